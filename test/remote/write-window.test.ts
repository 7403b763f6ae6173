/**
 * The shared write window between worker threads and the owner's thread (lib/remote/
 * write-window.ts): a worker terminated in the middle of its sends leaves at most a hole that
 * the owner skips; the others go on, and every acknowledged message is stored whole.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/message-store.js';
import { verifyStore } from '../../lib/store/verify.js';
import { useTempDirs } from '../support/backends.js';
import { ensureBuilt } from '../support/dist.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures',
  'mp-window-worker.mjs');
const tmp = useTempDirs('pmq-window-');

beforeAll(() => ensureBuilt());

interface Run { worker: Worker; acked: string[]; done: Promise<string> }

function start(dir: string, name: string, count: number): Run {
  const worker = new Worker(WORKER, { workerData: { dir, name, count } });
  const acked: string[] = [];
  const done = new Promise<string>((resolve, reject) => {
    worker.on('message', (m: { acked?: string; done?: boolean; role?: string }) => {
      if (m.acked !== undefined) acked.push(m.acked);
      if (m.done === true) resolve(m.role ?? '');
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker ${name} exited ${code}`)));
  });
  return { worker, acked, done };
}

async function storedBodies(owner: MessageStore): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const pull = owner.createPullConsumer({ group: 'check',
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
  pull.subscribe('t');
  let stored = 0;
  for (let q = 0; q < 4; q++) stored += await owner.maxOffset('t', q);
  let got = 0;
  for (let polls = 0; got < stored && polls < 2000; polls++) {
    for (const m of await pull.poll(1000)) {
      const body = m.body.toString();
      expect(m.keys).toEqual([body]); // whole: body and properties of the same send
      seen.set(body, (seen.get(body) ?? 0) + 1);
      got++;
    }
  }
  await pull.shutdown();
  return seen;
}

describe('the shared write window', () => {
  it('a worker terminated mid-run: the others go on, nothing acknowledged is lost', async () => {
    const dir = tmp.make();
    const owner = await MessageStore.open(dir, { multiProcess: true });
    await owner.createTopic('t', { queueNums: 4 });
    const count = 3000;
    const runs = ['w0', 'w1', 'w2', 'w3'].map((n) => start(dir, n, count));
    const victim = runs[3]!;
    victim.done.catch(() => undefined);
    while (victim.acked.length < 200) await new Promise((r) => setTimeout(r, 5));
    await victim.worker.terminate();
    const roles = await Promise.all(runs.slice(0, 3).map((r) => r.done));
    expect(roles).toEqual(['client', 'client', 'client']);
    for (const r of runs.slice(0, 3)) expect(r.acked).toHaveLength(count);
    const seen = await storedBodies(owner);
    for (const r of runs) for (const body of r.acked) expect(seen.get(body)).toBe(1);
    expect(victim.acked.length).toBeLessThan(count);
    await owner.close();
    expect((await verifyStore(dir)).healthy).toBe(true);
  }, 120_000);
});
