/**
 * Child process of the recovery scenario, in one of two roles:
 *
 * `write <contender> <dir> <count> <bodyBytes> [steady]`: fills a store with `count` messages,
 * prints `done <end>` and waits to be killed with SIGKILL. pocketmq (ASYNC_FLUSH, appends
 * flushed before `done`): the ConsumeQueue/checkpoint flush is pushed out of reach, so the
 * reopen has to check (and re-dispatch) the whole commit log: the worst case, `end` = where the
 * log ends; with `steady`, default options and `done` only after the checkpoint has caught up
 * (a crash in steady state). A peer: its async mode, loaded as the consume scenario loads its
 * backlog (batches of 4,096); `end` = count.
 *
 * `open <contender> <dir> <count>`: times the reopen in this fresh process and prints one JSON
 * line: seconds, check, the RSS before the open and the process's peak RSS when the clock
 * stopped (before the check, which may touch every page). Timed: pocketmq
 * `StoreEngine.open` (recovery included) plus reading the newest message; a peer, its open
 * (which replays what its engine replays: SQLite's WAL index, LevelDB's log) plus reading the
 * newest message. The check (messages found) is counted after the clock stops.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreEngine } from '../lib/internal.js';
import { loadPeer } from './peers/peer.js';

const TOPIC = 'recover';
const QUEUES = 4;

async function writePocket(dir: string, count: number, body: Buffer,
  steady: boolean): Promise<number> {
  const store = await StoreEngine.open(dir, steady ? { flushDiskType: 'ASYNC_FLUSH' }
    : { flushDiskType: 'ASYNC_FLUSH', flushConsumeQueueIntervalMs: 3_600_000 });
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    pending.push(store.putMessage({ topic: TOPIC, queueId: i % QUEUES, body }));
    if (pending.length === 4096) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await store.flushed();
  // Two ConsumeQueue flush intervals (1 s by default): the checkpoint names the log's end.
  if (steady) await sleep(2500);
  return store.commitLogMaxOffset;
}

async function write(contender: string, dir: string, count: number, bodyBytes: number,
  steady: boolean): Promise<void> {
  const body = Buffer.alloc(bodyBytes, 0x72);
  let end = count;
  if (contender === 'pocketmq') {
    end = await writePocket(dir, count, body, steady);
  } else {
    const peer = await loadPeer(contender);
    const queue = await peer.open(dir, peer.modes.find((m) => !m.durable)!, 256);
    await queue.fill(body, count);
  }
  process.stdout.write(`done ${end}\n`);
  setInterval(() => undefined, 1000);
}

function mb(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}

async function openPocket(dir: string, count: number): Promise<Record<string, number>> {
  const t0 = process.hrtime.bigint();
  const store = await StoreEngine.open(dir);
  const last = count - 1;
  const newest = store.getMessage(TOPIC, last % QUEUES, Math.floor(last / QUEUES), 1);
  const seconds = stopped(t0);
  if (!('records' in newest) || newest.records.length !== 1) {
    throw new Error(`pocketmq: message ${last} not found after recovery`);
  }
  let check = 0;
  for (let q = 0; q < QUEUES; q++) check += store.getMaxOffsetInQueue(TOPIC, q);
  const report = store.recovery!;
  await store.close();
  return { seconds, check, checkedBytes: report.checkedBytes, endOffset: report.endOffset,
    records: report.records };
}

async function openPeer(contender: string, dir: string,
  count: number): Promise<Record<string, number>> {
  const peer = await loadPeer(contender);
  const mode = peer.modes.find((m) => !m.durable)!;
  const t0 = process.hrtime.bigint();
  const queue = await peer.open(dir, mode, 1);
  const newest = await queue.readFrom(count - 1, 1);
  const seconds = stopped(t0);
  if (newest.length !== 1) throw new Error(`${contender}: message ${count - 1} not found`);
  const check = await queue.count();
  await queue.close();
  return { seconds, check };
}

/** The peak RSS of this process so far, read when the clock stops. */
let peakRssMb = 0;

/**
 * This process's peak RSS in bytes: Linux's VmHWM (the high-water mark of this program's memory
 * since exec). `resourceUsage().maxRSS` would not do on Linux: it keeps the parent's peak
 * across fork and exec, so every child would report at least the runner's RSS.
 */
function peakRssBytes(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m !== null) return Number(m[1]) * 1024;
  } catch {
    // not Linux: fall back to maxRSS (KiB), an upper bound
  }
  return process.resourceUsage().maxRSS * 1024;
}

function stopped(t0: bigint): number {
  peakRssMb = mb(peakRssBytes());
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function open(contender: string, dir: string, count: number): Promise<void> {
  const rssStartMb = mb(process.memoryUsage.rss());
  const result = contender === 'pocketmq' ? await openPocket(dir, count)
    : await openPeer(contender, dir, count);
  process.stdout.write(`${JSON.stringify({ ...result, rssStartMb, peakRssMb })}\n`);
}

const [role, contender, dir, countArg, bodyArg, steadyArg] = process.argv.slice(2);
if (role === 'write') {
  await write(contender!, dir!, Number(countArg), Number(bodyArg), steadyArg === 'steady');
} else if (role === 'open') {
  await open(contender!, dir!, Number(countArg));
} else {
  throw new Error(`usage: recovery-child.js write|open <contender> <dir> <count> [bodyBytes]`);
}
