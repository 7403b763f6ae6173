/**
 * A producer of the `ipc` scenario in another thread or process: opens the store with
 * `multiProcess: true` (a client of the bench's owner), sends `count` messages of `bodyBytes`
 * with `inFlight` sends at once, and reports its time and send latencies (every 64th send).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MessageStore } from '../lib/index.js';

interface Job {
  readonly dir: string;
  readonly count: number;
  readonly bodyBytes: number;
  readonly inFlight: number;
}

async function produce(job: Job): Promise<{ seconds: number; latUs: number[]; acked: number }> {
  const store = await MessageStore.open(job.dir, { multiProcess: true });
  const producer = store.createProducer({ group: 'ipc' });
  const body = Buffer.alloc(job.bodyBytes, 0x69);
  const latUs: number[] = [];
  let next = 0;
  let acked = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: job.inFlight }, async () => {
    for (let i = next++; i < job.count; i = next++) {
      const t = (i & 63) === 0 ? process.hrtime.bigint() : 0n;
      const r = await producer.send({ topic: 'bench', body });
      if (r.status === 'SEND_OK') acked++;
      if (t !== 0n) latUs.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  }));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await store.close();
  return { seconds, latUs, acked };
}

if (parentPort !== null) {
  parentPort.postMessage(await produce(workerData as Job));
} else if (process.argv[2] !== undefined) {
  process.stdout.write(`${JSON.stringify(await produce(JSON.parse(process.argv[2]) as Job))}\n`);
}
