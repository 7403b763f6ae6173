/**
 * Scenarios of the messaging API, through the public MessageStore:
 * - `produce`: Producer.send with ASYNC_FLUSH and SYNC_FLUSH, 1 and 256 sends in flight, 128 B,
 *   1 KiB and 16 KiB bodies. Each row is followed by the peers' rows of the same durability
 *   class (see peer-rows.ts and peers/). `batch-produce`: sendBatch of 32 at 128 B and 1 KiB,
 *   8 batches in flight, then the peers' batches of 32 puts.
 * - `consume`: catch-up of a backlog with a PullConsumer (poll) and a PushConsumer with
 *   consumeMessageBatchMaxSize 32 and 1, then the peers' catch-up of the same backlog.
 * (`e2e`, latency at fixed rates, is in latency.ts.)
 */
import fs from 'node:fs';
import { MessageStore, type MessageExt } from '../lib/index.js';
import { drive, median, nowNs, row, startClock, type BenchContext, type Row } from './harness.js';
import { peerBatchRows, peerConsumeRows, peerProduceRows } from './peer-rows.js';

const TOPIC = 'bench';

export async function openStore(ctx: BenchContext, name: string,
  flushDiskType: 'ASYNC_FLUSH' | 'SYNC_FLUSH' = 'ASYNC_FLUSH'): Promise<MessageStore> {
  const store = await MessageStore.open(ctx.freshDir(name), { flushDiskType });
  await store.createTopic(TOPIC, { queueNums: 4 });
  return store;
}

async function stored(store: MessageStore): Promise<number> {
  let n = 0;
  for (let q = 0; q < 4; q++) n += await store.maxOffset(TOPIC, q);
  return n;
}

async function sendRow(ctx: BenchContext, bodyBytes: number, mode: 'ASYNC_FLUSH' | 'SYNC_FLUSH',
  inFlight: number, count: number): Promise<Row> {
  const store = await openStore(ctx, 'produce', mode);
  const producer = store.createProducer({ group: 'bench' });
  const body = Buffer.alloc(bodyBytes, 0x61);
  const { seconds, lat } = await drive(count, inFlight,
    () => producer.send({ topic: TOPIC, body }));
  const check = await stored(store);
  await closeAndRemove(store);
  return row({ scenario: 'produce', contender: 'pocketmq send', bodyBytes, mode, inFlight,
    messages: count, seconds, check, ...lat.summary() });
}

async function batchRow(ctx: BenchContext, bodyBytes: number, count: number): Promise<Row> {
  const store = await openStore(ctx, 'batch');
  const producer = store.createProducer({ group: 'bench' });
  const batch = Array.from({ length: 32 }, () =>
    ({ topic: TOPIC, body: Buffer.alloc(bodyBytes, 0x62) }));
  const batches = Math.ceil(count / 32);
  const { seconds, lat } = await drive(batches, 8, () => producer.sendBatch(batch));
  const check = await stored(store);
  await closeAndRemove(store);
  return row({ scenario: 'batch-produce', contender: 'pocketmq sendBatch(32)', bodyBytes,
    mode: 'ASYNC_FLUSH', inFlight: 8 * 32, messages: batches * 32, seconds, check,
    ...lat.summary() });
}

/** Close the store and remove its directory (a full disk would skew later runs). */
export async function closeAndRemove(store: MessageStore): Promise<void> {
  await store.close();
  fs.rmSync(store.dir, { recursive: true, force: true });
}

/**
 * A store holding `count` messages of `bodyBytes` in 4 queues, closed and opened again (with a
 * full GC between where `--expose-gc` allows): a consumer catching up after a restart, not one
 * reading inside the heap the writer just filled.
 */
async function backlog(ctx: BenchContext, bodyBytes: number, count: number):
  Promise<{ store: MessageStore }> {
  const first = await openStore(ctx, 'consume');
  const producer = first.createProducer({ group: 'bench' });
  const batch = Array.from({ length: 32 }, () =>
    ({ topic: TOPIC, body: Buffer.alloc(bodyBytes, 0x63) }));
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i += 32) {
    pending.push(producer.sendBatch(batch));
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await first.close();
  (globalThis as { gc?: () => void }).gc?.();
  return { store: await MessageStore.open(first.dir) };
}

async function pullCatchUp(ctx: BenchContext, bodyBytes: number, count: number): Promise<Row> {
  const { store } = await backlog(ctx, bodyBytes, count);
  const total = await stored(store);
  const consumer = store.createPullConsumer({ group: 'pull',
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', pullBatchSize: 32 });
  consumer.subscribe(TOPIC, '*');
  const t0 = startClock();
  let got = 0;
  let sum = 0;
  while (got < total) {
    const msgs = await consumer.poll(1000);
    if (msgs.length === 0) break;
    for (const m of msgs) sum += m.body.length;
    got += msgs.length;
  }
  const seconds = Number(nowNs() - t0) / 1e9;
  await closeAndRemove(store);
  return row({ scenario: 'consume', contender: 'pocketmq poll(32)', bodyBytes,
    mode: 'catch-up', inFlight: 1, messages: got, seconds, check: sum });
}

async function pushCatchUp(ctx: BenchContext, bodyBytes: number, count: number,
  batchSize: number): Promise<Row> {
  const { store } = await backlog(ctx, bodyBytes, count);
  const total = await stored(store);
  const consumer = store.createPushConsumer({ group: `push${batchSize}`,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', consumeMessageBatchMaxSize: batchSize });
  consumer.subscribe(TOPIC, '*');
  let got = 0;
  let sum = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  consumer.registerMessageListener((msgs: MessageExt[]) => {
    for (const m of msgs) sum += m.body.length;
    got += msgs.length;
    if (got >= total) finish();
    return 'CONSUME_SUCCESS';
  });
  const t0 = startClock();
  await consumer.start();
  await done;
  const seconds = Number(nowNs() - t0) / 1e9;
  await closeAndRemove(store);
  return row({ scenario: 'consume', contender: `pocketmq push(batch ${batchSize})`, bodyBytes,
    mode: 'catch-up', inFlight: 20, messages: got, seconds, check: sum });
}

async function repeat(ctx: BenchContext, make: () => Promise<Row>): Promise<Row> {
  const rows: Row[] = [];
  for (let r = 0; r < ctx.runs; r++) rows.push(await make());
  return median(rows);
}

/** Messages per produce row: 1M at 128 B, 500k at 1 KiB, 62.5k (1 GiB) at 16 KiB. */
function produceCount(ctx: BenchContext, bodyBytes: number): number {
  const n = bodyBytes > 4096 ? 62_500 : bodyBytes > 512 ? 500_000 : 1_000_000;
  return Math.round(n * (ctx.quick ? 0.02 : 1));
}

/** pocketmq's send, then each peer's put in the same durability class, on the same sizes. */
export async function runProduce(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  const both = async (bodyBytes: number, mode: 'ASYNC_FLUSH' | 'SYNC_FLUSH', inFlight: number,
    n: number): Promise<void> => {
    rows.push(await repeat(ctx, () => sendRow(ctx, bodyBytes, mode, inFlight, n)));
    rows.push(...await peerProduceRows(ctx, bodyBytes, mode === 'SYNC_FLUSH', inFlight, n));
  };
  for (const bodyBytes of [128, 1024, 16384]) {
    const n = produceCount(ctx, bodyBytes);
    await both(bodyBytes, 'ASYNC_FLUSH', 256, n);
    await both(bodyBytes, 'ASYNC_FLUSH', 1, Math.round(n / 4));
    await both(bodyBytes, 'SYNC_FLUSH', 256, Math.round(n / 2));
  }
  await both(128, 'SYNC_FLUSH', 1, ctx.quick ? 300 : 5000);
  // sendBatch(32): 2M messages at 128 B, 1M at 1 KiB (about 1 GiB).
  for (const [bodyBytes, count] of [[128, 2_000_000], [1024, 1_000_000]] as const) {
    const batchN = Math.round(count * (ctx.quick ? 0.02 : 1) / 32) * 32;
    rows.push(await repeat(ctx, () => batchRow(ctx, bodyBytes, batchN)));
    rows.push(...await peerBatchRows(ctx, bodyBytes, batchN));
  }
  return rows;
}

/**
 * Catch-up of a 1M-message backlog at 128 B and 1 KiB (62,496, about 1 GiB, at 16 KiB),
 * pocketmq then the peers. Counts are multiples of 32: the backlog is written by sendBatch(32).
 */
export async function runConsume(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 20_000 : 1_000_000;
  const large = Math.floor(n / 16 / 32) * 32;
  const rows = [
    await repeat(ctx, () => pullCatchUp(ctx, 128, n)),
    await repeat(ctx, () => pushCatchUp(ctx, 128, n, 32)),
    await repeat(ctx, () => pushCatchUp(ctx, 128, n, 1)),
    ...await peerConsumeRows(ctx, 128, n),
    await repeat(ctx, () => pullCatchUp(ctx, 1024, n)),
    ...await peerConsumeRows(ctx, 1024, n),
    await repeat(ctx, () => pullCatchUp(ctx, 16384, large)),
    ...await peerConsumeRows(ctx, 16384, large),
  ];
  return rows;
}
