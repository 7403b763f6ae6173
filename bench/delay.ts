/**
 * Scenario `delay`: scheduled delivery and the cost of a retry.
 *
 * - `deliverAt`: 1,000,000 messages (20,000 with `--quick`) of 128 B, each with a delivery time
 *   spread evenly over one hour of the store's clock, all sent first (in that random order).
 *   The store runs on a clock 60 times faster than real time, so the hour passes in a real
 *   minute; the rate at which due messages are delivered is then 16,667 a second. Reported: how
 *   late each message reached the consumer (delivered minus due, in real ms: store-clock ms / 60)
 *   as p50/p99/p999, the process's memory while a million timers were pending (RSS, and the
 *   timers the scheduler held in memory at most), and the check that each arrived once.
 * - `retry`: 100,000 messages (5,000) consumed by a push consumer that fails each once
 *   (RECONSUME_LATER): the failed message goes to the group's retry topic through the smallest
 *   delay level (1 ms here) and back. Its rate is next to the same run without failures, so the
 *   difference is the cost of a retry round trip.
 */
import { MessageStore, type Clock } from '../lib/index.js';
import { storeInternals } from '../lib/internal.js';
import {
  fullGc, Latencies, nowNs, row, sampleRss, startClock, type BenchContext, type Row,
} from './harness.js';

const BODY = Buffer.alloc(128, 0x61);
/** How much faster than real time the store's clock runs in the deliverAt row. */
const SPEED = 60;
const HOUR_MS = 3_600_000;

/** A clock that runs `speed` times faster than the real one (timers scaled to match). */
function fastClock(speed: number): Clock {
  const realStart = performance.now();
  const start = Date.now();
  return {
    now: () => Math.floor(start + (performance.now() - realStart) * speed),
    setTimeout: (fn: () => void, ms: number) => {
      const t = setTimeout(fn, Math.max(0, ms / speed));
      t.unref();
      return t;
    },
    clearTimeout: (t: unknown) => clearTimeout(t as NodeJS.Timeout),
  };
}

async function deliverAtRow(ctx: BenchContext): Promise<Row> {
  const n = ctx.quick ? 20_000 : 1_000_000;
  const spanMs = ctx.quick ? 60_000 : HOUR_MS;
  const clock = fastClock(SPEED);
  const store = await MessageStore.open(ctx.freshDir('delay'), { clock,
    commitLogSegmentSize: 256 * 2 ** 20 });
  try {
    await store.createTopic('d', { queueNums: 4 });
    const producer = store.createProducer({ group: 'dp' });
    // Due times in a shuffled order over the span, starting a real second after the sends.
    const t0 = clock.now() + SPEED * 1000 + (ctx.quick ? 0 : 20 * SPEED * 1000);
    const order = new Uint32Array(n).map((_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let i = 0; i < n; i += 256) {
      const sends: Promise<unknown>[] = [];
      for (let k = i; k < Math.min(n, i + 256); k++) {
        const dueMs = t0 + Math.floor((order[k]! * spanMs) / n);
        sends.push(producer.send({ topic: 'd', body: BODY, keys: String(dueMs),
          properties: { slot: String(order[k]) }, deliverAt: dueMs }));
      }
      await Promise.all(sends);
    }
    fullGc();
    const start = startClock();
    const lateness = new Latencies(n);
    const broker = storeInternals(store).broker;
    let held = broker.timersInMemory;
    let got = 0;
    const seen = new Uint8Array(n);
    const done = new Promise<void>((resolve) => {
      const consumer = store.createPushConsumer({ group: 'dc', consumeThreadMax: 64,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      consumer.subscribe('d');
      consumer.registerMessageListener((msgs) => {
        const now = clock.now();
        for (const m of msgs) {
          const due = Number(m.keys[0]);
          lateness.add(Math.max(0, ((now - due) / SPEED) * 1000));
          // The slot itself: from the due time, two slots 3.6 ms apart can round to one.
          const slot = Number(m.properties.slot);
          if (slot >= 0 && slot < n && seen[slot] === 0) seen[slot] = 1;
          got++;
        }
        held = Math.max(held, broker.timersInMemory);
        if (got % 4096 === 0) sampleRss();
        if (got >= n) resolve();
      });
      void consumer.start();
    });
    await done;
    const seconds = Number(nowNs() - start) / 1e9;
    const once = seen.reduce((a, b) => a + b, 0);
    return row({ scenario: 'delay', contender: 'pocketmq deliverAt', bodyBytes: 128,
      mode: `${SPEED}x clock, ${spanMs / 60_000} min span`, inFlight: 1, messages: n, seconds,
      check: once === n && got === n ? n : `${once} of ${n} once, ${got} delivered`,
      ...lateness.summary(), extra: { latenessUnit: 'real us', timersHeldMax: held } });
  } finally {
    await store.close();
  }
}

async function retryRow(ctx: BenchContext, failOnce: boolean): Promise<Row> {
  const n = ctx.quick ? 5_000 : 100_000;
  const store = await MessageStore.open(ctx.freshDir('retry'), {
    messageDelayLevel: '1ms 1ms 1ms 1ms 1ms', commitLogSegmentSize: 256 * 2 ** 20 });
  try {
    await store.createTopic('r', { queueNums: 4 });
    const producer = store.createProducer({ group: 'rp' });
    for (let i = 0; i < n; i += 32) {
      await producer.sendBatch(Array.from({ length: Math.min(32, n - i) },
        () => ({ topic: 'r', body: BODY })));
    }
    fullGc();
    const start = startClock();
    let handled = 0;
    await new Promise<void>((resolve) => {
      const consumer = store.createPushConsumer({ group: 'rc', consumeThreadMax: 64,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      consumer.subscribe('r');
      consumer.registerMessageListener((msgs) => {
        const m = msgs[0]!;
        if (failOnce && m.reconsumeTimes === 0) return 'RECONSUME_LATER';
        if (++handled >= n) resolve();
        return 'CONSUME_SUCCESS';
      });
      void consumer.start();
    });
    const seconds = Number(nowNs() - start) / 1e9;
    return row({ scenario: 'delay', contender: failOnce ? 'pocketmq push, each failed once'
      : 'pocketmq push, no failures', bodyBytes: 128, mode: 'retry round trip', inFlight: 64,
    messages: n, seconds, check: handled,
    extra: { usPerMessage: Math.round((seconds / n) * 1e7) / 10 } });
  } finally {
    await store.close();
  }
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  for (let r = 0; r < ctx.runs; r++) rows.push(await deliverAtRow(ctx));
  for (let r = 0; r < ctx.runs; r++) {
    rows.push(await retryRow(ctx, false));
    rows.push(await retryRow(ctx, true));
  }
  return rows;
}
