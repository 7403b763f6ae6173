/**
 * Scenario `ipc`: producing into a store owned by another thread or process
 * (`multiProcess: true`), next to producing in the owner itself, and the peers in the same
 * shapes, measured in the same run:
 * - `ipc` (the reference): the owner's own producer, 256 sends in flight.
 * - `ipc-process`: one child process, a client of the owner over its socket, 256 in flight.
 *   Peers: a child process writing into the database the bench's process also has open.
 * - `ipc-threads`: 1, 2 and 4 worker threads, each a client, 256 in flight each; the row's rate
 *   is all their messages over the time the slowest took. Peers: 1, 2 and 4 worker threads,
 *   each with its own connection or environment on the one database the bench's thread also
 *   has open.
 * Peers write in their async mode, the puts of one event-loop turn of each writer in one
 * transaction (pocketmq's ASYNC_FLUSH appends a turn's sends together too); see
 * `Peer.openShared`. A peer that allows one opener only (classic-level) is tried in a second
 * thread and a second process, and what refused it goes to the run's notes instead of a row.
 * 128 B bodies; 200,000 messages per row (10,000 with `--quick`); rows interleaved run by run,
 * each the median of `--runs`. Every row's time runs from starting its producers (thread or
 * process start and open included) to the last answer. Latencies are of every 64th send (µs).
 * `check`: messages the database holds afterwards.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { MessageStore } from '../lib/index.js';
import {
  drive, Latencies, median, nowNs, row, startClock, type BenchContext, type Row,
} from './harness.js';
import type { Job, Report } from './ipc-worker.js';
import { loadPeers, type Peer } from './peers/peer.js';

const BODY = 128;
const IN_FLIGHT = 256;
const THREADS = [1, 2, 4] as const;
const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ipc-worker.js');

type Kind = 'process' | 'thread';

function inWorker(job: Job): Promise<Report> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { workerData: job });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

function inProcess(job: Job): Promise<Report> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, JSON.stringify(job)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Report)
      : reject(new Error(`ipc producer exited ${code}`))));
  });
}

/** `producers` writers of `job` at once; their latencies and the time the slowest took. */
async function writers(job: Job, producers: number, kind: Kind):
  Promise<{ seconds: number; lat: Latencies }> {
  const start = startClock();
  const reports = await Promise.all(Array.from({ length: producers },
    () => (kind === 'thread' ? inWorker(job) : inProcess(job))));
  const seconds = Number(nowNs() - start) / 1e9;
  const lat = new Latencies(reports.reduce((k, r) => k + r.latUs.length, 0));
  for (const r of reports) for (const us of r.latUs) lat.add(us);
  return { seconds, lat };
}

function contender(name: string, producers: number, kind: Kind): string {
  if (kind === 'process') return `${name} ${name === 'pocketmq' ? 'client' : 'child'} process`;
  return `${name} ${producers} worker thread${producers === 1 ? '' : 's'}`;
}

/** pocketmq's row: the bench's thread owns the store, the producers are its clients. */
async function pocketRow(ctx: BenchContext, n: number, producers: number,
  kind: Kind): Promise<Row> {
  const dir = ctx.freshDir(`ipc-${kind}`);
  const store = await MessageStore.open(dir, { multiProcess: true });
  try {
    await store.createTopic('bench', { queueNums: 4 });
    const each = Math.floor(n / producers);
    const { seconds, lat } = await writers({ dir, count: each, bodyBytes: BODY,
      inFlight: IN_FLIGHT }, producers, kind);
    return row({ scenario: `ipc-${kind === 'process' ? 'process' : 'threads'}`,
      contender: contender('pocketmq', producers, kind), bodyBytes: BODY, mode: 'ASYNC_FLUSH',
      inFlight: IN_FLIGHT * producers, messages: each * producers, seconds,
      check: await stored(store), ...lat.summary() });
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function stored(store: MessageStore): Promise<number> {
  let n = 0;
  for (let q = 0; q < 4; q++) n += await store.maxOffset('bench', q);
  return n;
}

/** A peer's row: the bench's thread holds the database open, the writers are its others. */
async function peerRow(ctx: BenchContext, peer: Peer & Required<Pick<Peer, 'openShared'>>,
  n: number, producers: number, kind: Kind): Promise<Row> {
  const dir = ctx.freshDir(`ipc-${peer.name}`);
  const mine = await peer.openShared(dir);
  try {
    const each = Math.floor(n / producers);
    const { seconds, lat } = await writers({ dir, count: each, bodyBytes: BODY,
      inFlight: IN_FLIGHT, peer: peer.name }, producers, kind);
    return row({ scenario: `ipc-${kind === 'process' ? 'process' : 'threads'}`,
      contender: contender(peer.name, producers, kind), bodyBytes: BODY,
      mode: peer.modes.find((m) => !m.durable)!.mode, inFlight: IN_FLIGHT * producers,
      messages: each * producers, seconds, check: await mine.count(), ...lat.summary() });
  } finally {
    await mine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function localRow(ctx: BenchContext, n: number): Promise<Row> {
  const dir = ctx.freshDir('ipc-local');
  const store = await MessageStore.open(dir, { multiProcess: true });
  try {
    await store.createTopic('bench', { queueNums: 4 });
    const producer = store.createProducer({ group: 'ipc' });
    const body = Buffer.alloc(BODY, 0x69);
    const { seconds, lat } = await drive(n, IN_FLIGHT,
      () => producer.send({ topic: 'bench', body }));
    return row({ scenario: 'ipc', contender: 'pocketmq in-process (owner)', bodyBytes: BODY,
      mode: 'ASYNC_FLUSH', inFlight: IN_FLIGHT, messages: n, seconds,
      check: await stored(store), ...lat.summary() });
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A peer without a shared writer: its database held open here, a second opener tried in a
 * worker thread and in a child process; what they were told goes to the run's notes.
 */
async function probe(ctx: BenchContext, peer: Peer): Promise<void> {
  const dir = ctx.freshDir(`ipc-${peer.name}`);
  const mine = await peer.open(dir, peer.modes[0]!, 1);
  try {
    const job: Job = { dir, count: 0, bodyBytes: BODY, inFlight: 1, peer: peer.name,
      probe: true };
    // The child first: LevelDB's refusal in this process's thread closes its file descriptor
    // of LOCK, and closing any descriptor drops the process's POSIX lock on the file.
    const child = (await inProcess(job)).note;
    const thread = (await inWorker(job)).note;
    ctx.skipped.set(`${peer.name} (ipc-process, ipc-threads)`, 'one opener at a time: a ' +
      `second opener in a worker thread got "${thread}", in a child process "${child}"`);
  } finally {
    await mine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 10_000 : 200_000;
  const peers = await loadPeers(ctx);
  const shared = peers.filter((p): p is Peer & Required<Pick<Peer, 'openShared'>> =>
    p.openShared !== undefined);
  for (const p of peers) if (p.openShared === undefined) await probe(ctx, p);
  // Each configuration's runs, interleaved: run r of every row before run r + 1 of any.
  const runs = new Map<string, Row[]>();
  const add = (r: Row): void => {
    const key = `${r.scenario}|${r.contender}`;
    runs.set(key, [...runs.get(key) ?? [], r]);
  };
  for (let r = 0; r < ctx.runs; r++) {
    add(await localRow(ctx, n));
    add(await pocketRow(ctx, n, 1, 'process'));
    for (const p of shared) add(await peerRow(ctx, p, n, 1, 'process'));
    for (const k of THREADS) {
      add(await pocketRow(ctx, n, k, 'thread'));
      for (const p of shared) add(await peerRow(ctx, p, n, k, 'thread'));
    }
  }
  return [...runs.values()].map((rows) => median(rows));
}
