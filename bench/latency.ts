/**
 * Scenario `e2e`: producer -> consumer latency at fixed rates, p50/p99/p999, pocketmq and the
 * peers in the same run on the same schedule.
 * - Rates: 1,000, 10,000 and 50,000 msgs/s at 128 B and 1 KiB; 1,000 msgs/s at 16 KiB. Each
 *   configuration sends a warm-up (not counted: JIT, first files) and then the measured
 *   messages, paced by one loop that sends every message when it is due, checked every
 *   event-loop turn (`pace`, mode `10000/s ASYNC_FLUSH`). At 128 B every rate runs a second
 *   time with the sends in 1 ms timer bursts (mode `10000/s timer ASYNC_FLUSH`): a
 *   `setInterval` of 1 ms sends the messages due at each tick, as a timer-driven application
 *   does (about 10 per tick at 10,000/s, all in one event-loop turn). `--quick`: 128 B at
 *   10,000/s, 2,000 messages, paced both ways.
 * - Each contender's store first takes a fill it is not timed on: 40,000 messages of 128 B
 *   (8 MB of records; 4,000 with `--quick`), for pocketmq in another topic, for the peers
 *   before the first measured message, then the pause `settle`. The rows measure a store in
 *   use, not a new one: pocketmq's first 4 MiB of appends grow its first segment (mapped 4, 16,
 *   then 64 MiB) and allocate the next ones, and each new mapping's external memory makes V8
 *   run a full mark-compact (3 - 10 ms on this machine) in the first seconds of a store.
 * - Every message carries its number in its first 4 body bytes; the consumer looks up when it
 *   was sent. Latency = consumer sees it - producer call made (`p50Us`...). Also, in `extra`,
 *   the p99/p999 measured from when the message was *due* (`p99FromDueUs`): a stall of the
 *   process (GC, a long flush) delays the sends behind it too, which only that count shows.
 *   `extra` also has the event loop's delay during the row (p99 and max, ms: a stalled loop
 *   delays every contender's consumer) and the 1-minute load average at its end. The peak RSS
 *   is sampled at the start and end of a row only (see `startClock`).
 * - Contenders, all writing in the durability class `async` (a settled write survives a
 *   process crash): pocketmq ASYNC_FLUSH `producer.send` (not awaited, as an application at a
 *   fixed rate would) to a push consumer (listener) and to a pull consumer (`poll` loop,
 *   batches of 32). Peers: `put` (not awaited; puts of one turn share a transaction, as
 *   pocketmq's appends of one turn share a commit), and a consumer loop that reads what is new
 *   since its last read (`readFrom(next, 32)`: SQLite `SELECT ... WHERE id > ? LIMIT 32`, lmdb
 *   `getRange` from the next key, LevelDB an iterator from the next key) until it finds
 *   nothing, then waits to be told: each put that settles wakes it (in-process, as pocketmq's
 *   consumers are woken by the store's arrival event). No contender polls on a timer.
 */
import fs from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { MessageExt, MessageStore } from '../lib/index.js';
import {
  Latencies, median, nowNs, row, startClock, type BenchContext, type Row,
} from './harness.js';
import { closeAndRemove, openStore } from './messaging.js';
import { loadPeers, type Peer } from './peers/peer.js';

const TOPIC = 'bench';
/** Messages a consumer takes per read: pocketmq's pullBatchSize default, the peers' LIMIT. */
const READ_BATCH = 32;

/**
 * How sends are paced: `turn` checks what is due every event-loop turn; `timer` sends what is
 * due at each tick of a 1 ms `setInterval` (bursts).
 */
export type Pacing = 'turn' | 'timer';

/** One configuration: body size, rate, pacing, messages before and after the warm-up. */
export interface Plan {
  bodyBytes: number; rate: number; warmup: number; measured: number; pacing?: Pacing;
}

function plans(ctx: BenchContext): Plan[] {
  if (ctx.quick) {
    const quick = { bodyBytes: 128, rate: 10_000, warmup: 500, measured: 1500 };
    return [quick, { ...quick, pacing: 'timer' }];
  }
  const plan = (bodyBytes: number, rate: number, seconds: number, pacing?: Pacing): Plan =>
    ({ bodyBytes, rate, warmup: Math.max(1000, rate / 5), measured: rate * seconds, pacing });
  const rates: [number, number][] = [[1000, 4], [10_000, 3], [50_000, 2]];
  return [128, 1024].flatMap((b) => rates.flatMap(([rate, s]) => (b === 128
    ? [plan(b, rate, s), plan(b, rate, s, 'timer')] : [plan(b, rate, s)])))
    .concat(plan(16384, 1000, 4));
}

/** When each message was sent and due, and the latencies of those that arrived. */
export class Probe {
  readonly total: number;
  readonly done: Promise<void>;
  got = 0;
  private readonly sentAt: Float64Array;
  private readonly fromSend: Latencies;
  private readonly fromDue: Latencies;
  private readonly origin = nowNs();
  private startUs = 0;
  private finish: () => void = () => undefined;
  private fail: (err: unknown) => void = () => undefined;
  private readonly facts: Record<string, number> = {};

  constructor(readonly plan: Plan) {
    this.total = plan.warmup + plan.measured;
    this.sentAt = new Float64Array(this.total);
    this.fromSend = new Latencies(plan.measured);
    this.fromDue = new Latencies(plan.measured);
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
  }

  nowUs(): number {
    return Number(nowNs() - this.origin) / 1000;
  }

  start(): void {
    this.startUs = this.nowUs();
  }

  sent(i: number): void {
    this.sentAt[i] = this.nowUs();
  }

  /** A message consumer saw at `nowUs` (one clock read per batch). */
  arrived(body: Buffer, nowUs: number): void {
    const i = body.readUInt32LE(0);
    if (i >= this.plan.warmup) {
      this.fromSend.add(nowUs - this.sentAt[i]!);
      this.fromDue.add(nowUs - (this.startUs + (i * 1e6) / this.plan.rate));
    }
    if (++this.got === this.total) this.finish();
  }

  failed(err: unknown): void {
    this.fail(err);
  }

  /** Facts about the run for `extra` (event-loop delay, load average). */
  note(facts: Record<string, number>): void {
    Object.assign(this.facts, facts);
  }

  summary(): { p50Us: number | null; p99Us: number | null; p999Us: number | null;
    extra: Record<string, number> } {
    const due = this.fromDue.summary();
    return { ...this.fromSend.summary(), extra: { warmupMessages: this.plan.warmup,
      p99FromDueUs: due.p99Us ?? -1, p999FromDueUs: due.p999Us ?? -1, ...this.facts } };
  }
}

/**
 * Sends message i (its number in its first 4 bytes) when it is due, from the start on (each
 * turn, or at each 1 ms timer tick: the plan's pacing), and waits for the consumer to have
 * seen all. Returns the seconds from the start to the last arrival. Fails if the consumer has
 * not seen them all some time after the last send.
 */
export async function pace(probe: Probe, send: (body: Buffer) => void): Promise<number> {
  const { bodyBytes, rate } = probe.plan;
  const template = Buffer.alloc(bodyBytes, 0x64);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const t0 = startClock(false);
  let i = 0;
  /** Sends what is due by now; true once every message is sent. */
  const sendDue = (): boolean => {
    const due = Math.min(probe.total, Math.floor((Number(nowNs() - t0) / 1e9) * rate) + 1);
    for (; i < due; i++) {
      const body = Buffer.from(template);
      body.writeUInt32LE(i, 0);
      probe.sent(i);
      send(body);
    }
    return i >= probe.total;
  };
  loop.enable();
  probe.start();
  if (probe.plan.pacing === 'timer') {
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        if (!sendDue()) return;
        clearInterval(tick);
        resolve();
      }, 1);
    });
  } else {
    while (!sendDue()) await yieldToLoop();
  }
  let timer: NodeJS.Timeout | undefined;
  const limitMs = 10_000 + (probe.total / rate) * 2000;
  await Promise.race([probe.done, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(
      `e2e: ${probe.got} of ${probe.total} messages arrived ${limitMs} ms after the last send`)),
    limitMs);
  })]).finally(() => clearTimeout(timer));
  const seconds = Number(nowNs() - t0) / 1e9;
  loop.disable();
  probe.note({ loopDelayP99Ms: Math.round(loop.percentile(99) / 1e4) / 100,
    loopDelayMaxMs: Math.round(loop.max / 1e4) / 100,
    loadAvg1: Math.round(os.loadavg()[0]! * 100) / 100 });
  return seconds;
}

/** Messages of 128 B in each contender's store before the row (see the header). */
function fillCount(ctx: BenchContext): number {
  return ctx.quick ? 4000 : 40_000;
}

const FILL_BODY = Buffer.alloc(128, 0x66);

/** pocketmq's fill: batches of 32 to a topic nobody reads, then the pause. */
async function fillPocket(ctx: BenchContext, store: MessageStore): Promise<void> {
  const producer = store.createProducer({ group: 'bench-fill' });
  const batch = Array.from({ length: READ_BATCH },
    () => ({ topic: 'bench-fill', body: FILL_BODY }));
  for (let n = 0; n < fillCount(ctx); n += READ_BATCH * 16) {
    await Promise.all(Array.from({ length: 16 }, () => producer.sendBatch(batch)));
  }
  await producer.shutdown();
  await settle();
}

function e2eRow(contender: string, mode: string, probe: Probe, seconds: number): Row {
  const { bodyBytes, rate } = probe.plan;
  const { extra, ...lat } = probe.summary();
  const paced = probe.plan.pacing === 'timer' ? 'timer ' : '';
  return row({ scenario: 'e2e', contender, bodyBytes, mode: `${rate}/s ${paced}${mode}`,
    inFlight: 1, messages: probe.got, seconds, check: probe.got, ...lat, extra });
}

async function pocketPush(ctx: BenchContext, plan: Plan): Promise<Row> {
  const store = await openStore(ctx, 'e2e');
  await fillPocket(ctx, store);
  const producer = store.createProducer({ group: 'bench' });
  const consumer = store.createPushConsumer({ group: 'e2e' });
  consumer.subscribe(TOPIC, '*');
  const probe = new Probe(plan);
  consumer.registerMessageListener((msgs: MessageExt[]) => {
    const now = probe.nowUs();
    for (const m of msgs) probe.arrived(m.body, now);
    return 'CONSUME_SUCCESS';
  });
  await consumer.start();
  const seconds = await pace(probe, (body) => {
    producer.send({ topic: TOPIC, body }).catch((err: unknown) => probe.failed(err));
  });
  await closeAndRemove(store);
  return e2eRow('pocketmq push', 'ASYNC_FLUSH', probe, seconds);
}

async function pocketPoll(ctx: BenchContext, plan: Plan): Promise<Row> {
  const store = await openStore(ctx, 'e2e-poll');
  await fillPocket(ctx, store);
  const producer = store.createProducer({ group: 'bench' });
  const consumer = store.createPullConsumer({ group: 'e2e-poll', pullBatchSize: READ_BATCH });
  consumer.subscribe(TOPIC, '*');
  await consumer.start();
  const probe = new Probe(plan);
  const reading = (async () => {
    while (probe.got < probe.total) {
      const msgs = await consumer.poll(1000);
      const now = probe.nowUs();
      for (const m of msgs) probe.arrived(m.body, now);
    }
  })().catch((err: unknown) => probe.failed(err));
  const seconds = await pace(probe, (body) => {
    producer.send({ topic: TOPIC, body }).catch((err: unknown) => probe.failed(err));
  });
  await reading;
  await closeAndRemove(store);
  return e2eRow(`pocketmq poll(${READ_BATCH})`, 'ASYNC_FLUSH', probe, seconds);
}

/** Wakes a waiting consumer; a wake with nobody waiting is kept for the next wait. */
class Signal {
  private pending = false;
  private waiter: (() => void) | null = null;

  notify(): void {
    const w = this.waiter;
    if (w === null) {
      this.pending = true;
      return;
    }
    this.waiter = null;
    w();
  }

  wait(): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }
}

async function peerRow(ctx: BenchContext, peer: Peer, plan: Plan): Promise<Row> {
  const dir = ctx.freshDir(`e2e-${peer.name}`);
  const mode = peer.modes.find((m) => !m.durable) ?? peer.modes[0]!;
  const queue = await peer.open(dir, mode, 256);
  const filled = fillCount(ctx);
  await queue.fill(FILL_BODY, filled);
  await settle();
  const probe = new Probe(plan);
  const signal = new Signal();
  const reading = (async () => {
    let next = filled;
    while (probe.got < probe.total) {
      const bodies = await queue.readFrom(next, READ_BATCH);
      if (bodies.length === 0) {
        await signal.wait();
        continue;
      }
      const now = probe.nowUs();
      for (const b of bodies) probe.arrived(b, now);
      next += bodies.length;
    }
  })().catch((err: unknown) => probe.failed(err));
  const notify = (): void => signal.notify();
  const seconds = await pace(probe, (body) => {
    queue.put(body).then(notify, (err: unknown) => probe.failed(err));
  });
  await reading;
  const stored = await queue.count();
  await queue.close();
  fs.rmSync(dir, { recursive: true, force: true });
  if (stored !== filled + probe.total) {
    throw new Error(`${peer.name}: ${stored} of ${filled} + ${probe.total} stored`);
  }
  return e2eRow(peer.name, mode.mode, probe, seconds);
}

/**
 * A pause before each contender's run: what the one before left running on other threads
 * (LevelDB's compaction, the page cache writing back the files it wrote and deleted) finishes
 * instead of falling on the next contender's latencies.
 */
const SETTLE_MS = 300;

function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

/**
 * Each plan: pocketmq push, pocketmq poll, then each peer that loads, taking turns run by run
 * (a noisy minute of a shared machine then falls on every contender, not on one), each after a
 * pause (`settle`); the median of each contender's runs by p99.
 */
export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  const peers = await loadPeers(ctx);
  for (const plan of plans(ctx)) {
    const contenders: (() => Promise<Row>)[] = [() => pocketPush(ctx, plan),
      () => pocketPoll(ctx, plan), ...peers.map((peer) => () => peerRow(ctx, peer, plan))];
    const runs = contenders.map((): Row[] => []);
    for (let r = 0; r < ctx.runs; r++) {
      for (const [k, make] of contenders.entries()) {
        await settle();
        runs[k]!.push(await make());
      }
    }
    rows.push(...runs.map((list) => median(list, 'p99')));
  }
  return rows;
}
