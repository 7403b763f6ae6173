/**
 * Scenario `replication`: what a follower costs the master.
 *
 * - Send throughput and latency with 256 sends in flight, 128 B bodies, 100,000 messages
 *   (5,000 with `--quick`): plain SYNC_FLUSH (no follower) next to SYNC_MASTER + SYNC_FLUSH
 *   with a SYNC_FLUSH follower in its own process on loopback (replication-child.ts), where a
 *   send resolves once the master's fdatasync and the follower's acknowledgement (after its own
 *   fdatasync) are both done.
 * - Follower lag under a steady ASYNC_MASTER load: sends at a fixed rate (5,000 a second for
 *   10 s; 2 s with `--quick`), the master's view of its follower's unacknowledged bytes sampled
 *   every 10 ms: p50/p99/max in bytes and in messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageStore, type MessageStoreOptions } from '../lib/index.js';
import { storeInternals } from '../lib/internal.js';
import {
  drive, fullGc, percentile, row, type BenchContext, type Row,
} from './harness.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'replication-child.js');
const BODY = Buffer.alloc(128, 0x61);
const IN_FLIGHT = 256;

/** A follower process of `port`; resolves once it is open. */
function startFollower(dir: string, port: number, options: MessageStoreOptions):
  Promise<ChildProcess> {
  const proc = spawn(process.execPath, [child, JSON.stringify({ dir, options: { ...options,
    brokerRole: 'SLAVE', haMasterAddress: `127.0.0.1:${port}` } })],
  { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve(proc);
    });
    proc.on('error', reject);
    proc.on('exit', (code) => reject(new Error(`the follower exited with code ${code}`)));
  });
}

function stopFollower(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    proc.removeAllListeners('exit');
    proc.once('exit', () => resolve());
    proc.stdin!.end();
  });
}

/** Resolves once the master sees a streaming follower. */
async function followerConnected(store: MessageStore): Promise<void> {
  const replication = storeInternals(store).replication!;
  const deadline = Date.now() + 30_000;
  while (replication.snapshot().followers.length === 0) {
    if (Date.now() > deadline) throw new Error('no follower connected within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A master (and its follower process when `role` is set) around `fn`. */
async function withPair<T>(ctx: BenchContext, options: MessageStoreOptions,
  fn: (store: MessageStore) => Promise<T>): Promise<T> {
  const store = await MessageStore.open(ctx.freshDir('replication-master'),
    { commitLogSegmentSize: 256 * 2 ** 20, ...options });
  let follower: ChildProcess | null = null;
  try {
    if (options.brokerRole !== undefined) {
      follower = await startFollower(ctx.freshDir('replication-follower'), store.haPort!,
        { commitLogSegmentSize: 256 * 2 ** 20, flushDiskType: options.flushDiskType });
      await followerConnected(store);
    }
    return await fn(store);
  } finally {
    await store.close();
    if (follower !== null) await stopFollower(follower);
  }
}

async function sendRow(ctx: BenchContext, replicated: boolean): Promise<Row> {
  const n = ctx.quick ? 5_000 : 100_000;
  const options: MessageStoreOptions = replicated
    ? { flushDiskType: 'SYNC_FLUSH', brokerRole: 'SYNC_MASTER', haListenPort: 0 }
    : { flushDiskType: 'SYNC_FLUSH' };
  return withPair(ctx, options, async (store) => {
    await store.createTopic('r', { queueNums: 4 });
    const producer = store.createProducer({ group: 'rp' });
    let ok = 0;
    fullGc();
    const { seconds, lat } = await drive(n, IN_FLIGHT, async () => {
      const r = await producer.send({ topic: 'r', body: BODY });
      if (r.status === 'SEND_OK') ok++;
    });
    return row({ scenario: 'replication', contender: replicated
      ? 'pocketmq SYNC_MASTER, follower process' : 'pocketmq, no follower',
    bodyBytes: BODY.length, mode: 'SYNC_FLUSH', inFlight: IN_FLIGHT, messages: n, seconds,
    check: ok === n ? n : `${ok} of ${n} SEND_OK`, ...lat.summary() });
  });
}

async function lagRow(ctx: BenchContext): Promise<Row> {
  const rate = 5_000;
  const seconds = ctx.quick ? 2 : 10;
  const n = rate * seconds;
  return withPair(ctx, { brokerRole: 'ASYNC_MASTER', haListenPort: 0 }, async (store) => {
    await store.createTopic('r', { queueNums: 4 });
    const producer = store.createProducer({ group: 'rp' });
    const replication = storeInternals(store).replication!;
    const lags: number[] = [];
    const sampler = setInterval(() => {
      lags.push(replication.snapshot().followers[0]?.lagBytes ?? NaN);
    }, 10);
    const start = performance.now();
    const sends: Promise<unknown>[] = [];
    // Sends at the rate: every ms, the ones due by now.
    for (let sent = 0; sent < n;) {
      const due = Math.min(n, Math.floor(((performance.now() - start) / 1000) * rate));
      for (; sent < due; sent++) sends.push(producer.send({ topic: 'r', body: BODY }));
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(sends);
    const elapsed = (performance.now() - start) / 1000;
    clearInterval(sampler);
    const sorted = lags.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
    const recordBytes = storeInternals(store).engine.commitLogMaxOffset / n;
    const perMessage = (bytes: number | null): number =>
      bytes === null ? 0 : Math.round((bytes / recordBytes) * 10) / 10;
    const p50 = percentile(sorted, 0.5);
    const p99 = percentile(sorted, 0.99);
    const max = sorted.at(-1) ?? null;
    return row({ scenario: 'replication', contender: 'pocketmq ASYNC_MASTER, follower lag',
      bodyBytes: BODY.length, mode: `${rate}/s steady`, inFlight: 0, messages: n,
      seconds: elapsed, check: sorted.length === lags.length ? n : 'follower dropped',
      extra: { lagP50Bytes: p50 ?? -1, lagP99Bytes: p99 ?? -1, lagMaxBytes: max ?? -1,
        lagP50Msgs: perMessage(p50), lagP99Msgs: perMessage(p99),
        lagMaxMsgs: perMessage(max), samples: sorted.length } });
  });
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const rows: Row[] = [];
  for (let r = 0; r < ctx.runs; r++) {
    rows.push(await sendRow(ctx, false));
    rows.push(await sendRow(ctx, true));
  }
  for (let r = 0; r < ctx.runs; r++) rows.push(await lagRow(ctx));
  return rows;
}
