/**
 * Worker threads producing into the process's store: each opens it with `multiProcess: true`
 * and becomes a client of the main thread's owner. Four of them at once: nothing lost, no record
 * interleaved (every message reads back whole, and verifyStore finds nothing wrong).
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
  'mp-worker.mjs');
const tmp = useTempDirs('pmq-workers-');

beforeAll(() => ensureBuilt());

function run(dir: string, name: string, count: number):
  Promise<{ name: string; acked: string[]; role: string }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: { dir, name, count } });
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`worker ${name} exited ${code}`));
    });
  });
}

describe('worker threads on the process\'s store', () => {
  it('four workers produce at once: nothing lost, nothing interleaved', async () => {
    const dir = tmp.make();
    const owner = await MessageStore.open(dir, { multiProcess: true });
    const count = 500;
    const results = await Promise.all(['w0', 'w1', 'w2', 'w3'].map((n) => run(dir, n, count)));
    expect(results.map((r) => r.role)).toEqual(['client', 'client', 'client', 'client']);
    for (const r of results) expect(r.acked).toHaveLength(count);
    const pull = owner.createPullConsumer({ group: 'check',
      consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
    pull.subscribe('t');
    const bodies = new Set<string>();
    for (let polls = 0; bodies.size < 4 * count && polls < 1000; polls++) {
      for (const m of await pull.poll(1000)) {
        expect(m.keys).toEqual([m.body.toString()]);
        bodies.add(m.body.toString());
      }
    }
    expect(bodies.size).toBe(4 * count);
    await owner.close();
    const report = await verifyStore(dir);
    expect(report.healthy).toBe(true);
  }, 60_000);
});
