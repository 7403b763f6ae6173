/**
 * Scenario `jetstream`: the same messaging API on a 3-node NATS JetStream cluster on loopback
 * (pocketmq/jetstream, streams with 3 replicas: a send resolves once two servers stored it),
 * next to the embedded store (ASYNC_FLUSH) on the same machine, in the same run:
 * - `send`: Producer.send, 256 in flight, 128 B and 1 KiB bodies (msgs/s; latency of every
 *   64th send). `check` = sends that resolved SEND_OK.
 * - `catch-up`: a push consumer (consumeMessageBatchMaxSize 32) reading a backlog of 1 KiB
 *   messages from the first offset. `check` = body bytes read.
 * - `e2e`: producer -> push consumer latency at 1,000 msgs/s, 1 KiB (p50/p99/p999 from the
 *   send call to the listener; the same pacing as scenario e2e).
 * The cluster runs from the `nats-server` on PATH, in a directory under `--dir`, and is killed
 * at the end. `--quick`: small counts. A machine without nats-server skips the scenario with a
 * line that says how to install it (CI installs it, and the JetStream tests fail without it).
 */
import { randomBytes } from 'node:crypto';
import type {
  Message, MessageExt, PushConsumerOptions, SendResult,
} from '../lib/index.js';
import { JetStreamStore } from '../lib/jetstream/index.js';
import {
  NATS_SERVER_MISSING, natsServerVersion, startNatsCluster, type NatsCluster,
} from '../test/fixtures/nats-cluster.js';
import { drive, median, nowNs, row, startClock, type BenchContext, type Row } from './harness.js';
import { pace, Probe, type Plan } from './latency.js';
import { closeAndRemove, openStore } from './messaging.js';

const JETSTREAM = 'R3, 3 servers';
const EMBEDDED = 'ASYNC_FLUSH';
const IN_FLIGHT = 256;

/** What the rows need of either store: a producer and a push consumer of a fresh topic. */
interface Contender {
  readonly name: 'jetstream' | 'pocketmq';
  readonly mode: string;
  /** A topic of its own for one row (JetStream streams are not removed between rows). */
  topic(): string;
  send(topic: string, body: Buffer): Promise<string>;
  consume(topic: string, group: string, batch: number,
    listener: (msgs: MessageExt[]) => void): Promise<void>;
  close(): Promise<void>;
}

/** What both stores offer: a producer's send and push consumers. */
interface AnyStore {
  createProducer(options: { group: string }): { send(m: Message): Promise<SendResult> };
  createPushConsumer(options: PushConsumerOptions): {
    subscribe(topic: string): void;
    registerMessageListener(listener: (msgs: MessageExt[]) => void): void;
    start(): Promise<void>;
  };
}

function contender(name: Contender['name'], mode: string, store: AnyStore,
  close: () => Promise<void>): Contender {
  const producer = store.createProducer({ group: 'bench' });
  return {
    name, mode, close,
    topic: () => `bench-${randomBytes(4).toString('hex')}`,
    send: async (topic, body) => (await producer.send({ topic, body })).status,
    consume: async (topic, group, batch, listener) => {
      const consumer = store.createPushConsumer({ group, consumeMessageBatchMaxSize: batch,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      consumer.subscribe(topic);
      consumer.registerMessageListener(listener);
      await consumer.start();
    },
  };
}

async function jetstream(cluster: NatsCluster): Promise<Contender> {
  const store = await JetStreamStore.connect({ servers: cluster.servers, replicas: 3 });
  return contender('jetstream', JETSTREAM, store, () => store.close());
}

async function embedded(ctx: BenchContext): Promise<Contender> {
  const store = await openStore(ctx, 'jetstream-embedded');
  return contender('pocketmq', EMBEDDED, store, () => closeAndRemove(store));
}

async function sendRow(c: Contender, bodyBytes: number, count: number): Promise<Row> {
  const topic = c.topic();
  const body = Buffer.alloc(bodyBytes, 0x6a);
  await c.send(topic, body); // the topic exists before the clock starts
  let ok = 0;
  const { seconds, lat } = await drive(count, IN_FLIGHT, async () => {
    if (await c.send(topic, body) === 'SEND_OK') ok++;
  });
  return row({ scenario: 'jetstream', contender: `${c.name} send`, bodyBytes, mode: c.mode,
    inFlight: IN_FLIGHT, messages: count, seconds, check: ok, ...lat.summary() });
}

async function catchUpRow(c: Contender, bodyBytes: number, count: number): Promise<Row> {
  const topic = c.topic();
  const body = Buffer.alloc(bodyBytes, 0x6b);
  await drive(count, IN_FLIGHT, () => c.send(topic, body));
  let got = 0;
  let bytes = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const t0 = startClock();
  await c.consume(topic, `catch-up-${topic}`, 32, (msgs) => {
    for (const m of msgs) bytes += m.body.length;
    got += msgs.length;
    if (got >= count) finish();
  });
  await done;
  const seconds = Number(nowNs() - t0) / 1e9;
  return row({ scenario: 'jetstream', contender: `${c.name} catch-up (push, batch 32)`,
    bodyBytes, mode: c.mode, inFlight: 20, messages: got, seconds, check: bytes });
}

async function latencyRow(c: Contender, plan: Plan): Promise<Row> {
  const topic = c.topic();
  const probe = new Probe(plan);
  // The topic is made by a message whose number no probe message has: it is not counted.
  await c.send(topic, Buffer.alloc(plan.bodyBytes, 0xff));
  await c.consume(topic, `e2e-${topic}`, 1, (msgs) => {
    const now = probe.nowUs();
    for (const m of msgs) if (m.body.readUInt32LE(0) !== 0xffff_ffff) probe.arrived(m.body, now);
  });
  const seconds = await pace(probe, (body) => {
    c.send(topic, body).catch((err: unknown) => probe.failed(err));
  });
  const { extra, ...lat } = probe.summary();
  return row({ scenario: 'jetstream', contender: `${c.name} e2e (push)`,
    bodyBytes: plan.bodyBytes, mode: `${plan.rate}/s ${c.mode}`, inFlight: 1,
    messages: probe.got, seconds, check: probe.got, ...lat, extra });
}

/** Each measurement on both contenders, taking turns run by run; medians per contender. */
async function both(ctx: BenchContext, contenders: readonly Contender[],
  make: (c: Contender) => Promise<Row>, by: 'msgsPerSec' | 'p99' = 'msgsPerSec'):
  Promise<Row[]> {
  const runs = contenders.map((): Row[] => []);
  for (let r = 0; r < ctx.runs; r++) {
    for (const [k, c] of contenders.entries()) runs[k]!.push(await make(c));
  }
  return runs.map((list) => median(list, by));
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  if (natsServerVersion() === null) {
    ctx.skipped.set('jetstream', NATS_SERVER_MISSING);
    return [];
  }
  const cluster = await startNatsCluster(3, ctx.freshDir('jetstream'));
  const contenders: Contender[] = [];
  try {
    contenders.push(await jetstream(cluster), await embedded(ctx));
    const sends = ctx.quick ? 1000 : 20_000;
    const backlog = ctx.quick ? 1000 : 20_000;
    const plan: Plan = ctx.quick ? { bodyBytes: 1024, rate: 500, warmup: 100, measured: 400 }
      : { bodyBytes: 1024, rate: 1000, warmup: 1000, measured: 5000 };
    const rows: Row[] = [];
    for (const bodyBytes of ctx.quick ? [1024] : [128, 1024]) {
      rows.push(...await both(ctx, contenders, (c) => sendRow(c, bodyBytes, sends)));
    }
    rows.push(...await both(ctx, contenders, (c) => catchUpRow(c, 1024, backlog)));
    rows.push(...await both(ctx, contenders, (c) => latencyRow(c, plan), 'p99'));
    for (const r of rows) r.extra = { ...r.extra, natsServer: cluster.version };
    return rows;
  } finally {
    await Promise.allSettled(contenders.map((c) => c.close()));
    cluster.stop();
  }
}
