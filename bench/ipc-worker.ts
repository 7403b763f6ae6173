/**
 * A producer of the `ipc` scenario in another thread or process: opens the store with
 * `multiProcess: true` (a client of the bench's owner), or with `peer` that peer's queue as one
 * of several writers (`Peer.openShared`), sends `count` messages of `bodyBytes` with `inFlight`
 * sends at once, and reports its time and send latencies (every 64th send). With `probe` it only
 * tries to open the peer's database, which another thread or process holds, and says what
 * happened (a peer that allows one opener only).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MessageStore } from '../lib/index.js';
import { loadPeer } from './peers/peer.js';

export interface Job {
  readonly dir: string;
  readonly count: number;
  readonly bodyBytes: number;
  readonly inFlight: number;
  /** A peer's name (bench/peers): its writer instead of pocketmq's producer. */
  readonly peer?: string;
  readonly probe?: boolean;
}

export interface Report {
  seconds: number;
  latUs: number[];
  acked: number;
  /** A probe's outcome: the error that refused the second opener, or `opened`. */
  note?: string;
}

/** `count` sends, `inFlight` at once, every 64th one's latency sampled (µs). */
async function loop(job: Job, send: () => Promise<boolean>): Promise<Report> {
  const latUs: number[] = [];
  let next = 0;
  let acked = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: job.inFlight }, async () => {
    for (let i = next++; i < job.count; i = next++) {
      const t = (i & 63) === 0 ? process.hrtime.bigint() : 0n;
      if (await send()) acked++;
      if (t !== 0n) latUs.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  }));
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, latUs, acked };
}

async function produce(job: Job): Promise<Report> {
  const store = await MessageStore.open(job.dir, { multiProcess: true });
  const producer = store.createProducer({ group: 'ipc' });
  const body = Buffer.alloc(job.bodyBytes, 0x69);
  const report = await loop(job, async () =>
    (await producer.send({ topic: 'bench', body })).status === 'SEND_OK');
  await store.close();
  return report;
}

async function producePeer(job: Job, name: string): Promise<Report> {
  const peer = await loadPeer(name);
  if (job.probe === true) {
    try {
      await (await peer.open(job.dir, peer.modes[0]!, 1)).close();
      return { seconds: 0, latUs: [], acked: 0, note: 'opened' };
    } catch (err) {
      const e = err as Error & { cause?: Error };
      return { seconds: 0, latUs: [], acked: 0, note: `${e.message}: ${e.cause?.message ?? ''}` };
    }
  }
  if (peer.openShared === undefined) throw new Error(`${name} has no shared writer`);
  const queue = await peer.openShared(job.dir);
  const body = Buffer.alloc(job.bodyBytes, 0x69);
  const report = await loop(job, async () => {
    await queue.put(body);
    return true;
  });
  await queue.close();
  return report;
}

function work(job: Job): Promise<Report> {
  return job.peer === undefined ? produce(job) : producePeer(job, job.peer);
}

if (parentPort !== null) {
  parentPort.postMessage(await work(workerData as Job));
} else if (process.argv[2] !== undefined) {
  process.stdout.write(`${JSON.stringify(await work(JSON.parse(process.argv[2]) as Job))}\n`);
}
