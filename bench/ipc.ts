/**
 * Scenario `ipc`: producing into a store owned by another thread or process
 * (`multiProcess: true`), next to producing in the owner itself.
 * - `in-process`: the owner's own producer, 256 sends in flight (the reference).
 * - `client process`: one child process, a client of the owner over its socket, 256 in flight.
 * - `worker threads`: 1, 2 and 4 worker threads, each a client, 256 in flight each; the row's
 *   rate is all their messages over the time the slowest took.
 * 128 B bodies, ASYNC_FLUSH; 200,000 messages per row (10,000 with `--quick`). Latencies are of
 * every 64th send (µs). `check`: messages the owner's topic holds afterwards.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { MessageStore } from '../lib/index.js';
import {
  drive, Latencies, nowNs, row, startClock, type BenchContext, type Row,
} from './harness.js';

const BODY = 128;
const IN_FLIGHT = 256;
const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ipc-worker.js');

interface Report { seconds: number; latUs: number[]; acked: number }

function inWorker(job: object): Promise<Report> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { workerData: job });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

function inProcess(job: object): Promise<Report> {
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

async function owned(ctx: BenchContext, name: string,
  fn: (dir: string, store: MessageStore) => Promise<Omit<Row, 'check'> & { check?: never }>):
  Promise<Row> {
  const dir = ctx.freshDir(name);
  const store = await MessageStore.open(dir, { multiProcess: true });
  await store.createTopic('bench', { queueNums: 4 });
  try {
    const r = await fn(dir, store);
    let stored = 0;
    for (let q = 0; q < 4; q++) stored += await store.maxOffset('bench', q);
    return { ...r, check: stored };
  } finally {
    await store.close();
  }
}

async function remoteRow(ctx: BenchContext, n: number, producers: number,
  kind: 'process' | 'thread'): Promise<Row> {
  return owned(ctx, `ipc-${kind}`, async (dir) => {
    const each = Math.floor(n / producers);
    const job = { dir, count: each, bodyBytes: BODY, inFlight: IN_FLIGHT };
    const start = startClock();
    const reports = await Promise.all(Array.from({ length: producers },
      () => (kind === 'thread' ? inWorker(job) : inProcess(job))));
    const seconds = Number(nowNs() - start) / 1e9;
    const lat = new Latencies(reports.reduce((k, r) => k + r.latUs.length, 0));
    for (const r of reports) for (const us of r.latUs) lat.add(us);
    return row({ scenario: 'ipc', bodyBytes: BODY, mode: 'ASYNC_FLUSH',
      contender: kind === 'thread' ? `pocketmq ${producers} worker thread(s)`
        : 'pocketmq client process', inFlight: IN_FLIGHT * producers,
      messages: each * producers, seconds, check: 0, ...lat.summary() }) as never;
  });
}

async function localRow(ctx: BenchContext, n: number): Promise<Row> {
  return owned(ctx, 'ipc-local', async (_dir, store) => {
    const producer = store.createProducer({ group: 'ipc' });
    const body = Buffer.alloc(BODY, 0x69);
    const { seconds, lat } = await drive(n, IN_FLIGHT,
      () => producer.send({ topic: 'bench', body }));
    return row({ scenario: 'ipc', contender: 'pocketmq in-process (owner)', bodyBytes: BODY,
      mode: 'ASYNC_FLUSH', inFlight: IN_FLIGHT, messages: n, seconds, check: 0,
      ...lat.summary() }) as never;
  });
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const n = ctx.quick ? 10_000 : 200_000;
  const rows: Row[] = [];
  for (let r = 0; r < ctx.runs; r++) {
    rows.push(await localRow(ctx, n));
    rows.push(await remoteRow(ctx, n, 1, 'process'));
    for (const k of [1, 2, 4]) rows.push(await remoteRow(ctx, n, k, 'thread'));
  }
  return rows;
}
