/**
 * The read path allocates its per-message and per-fetch objects without V8 allocation sites.
 *
 * V8 records where each object or array literal allocates; when a young-generation collection
 * finds most of one literal's recent objects alive, it allocates that literal's later objects
 * in the old generation (pretenuring). Catch-up reads whose messages, fetch requests and results
 * were literals ran at a third of their speed in about half the processes once that happened:
 * every object of the read died in the old generation, and each kept what it pointed to alive
 * through the next young collections. The child (test/fixtures/read-allocation-child.mjs)
 * reads with a pull and with a push consumer, keeps every message alive and collects the young
 * generation: a literal on the read path shows up in V8's trace as a site with a pretenuring
 * decision, which this test refuses. A control run checks that the trace shows such a decision
 * for a literal kept alive, so a Node whose trace says it otherwise fails here, not silently.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { MessageStore } from '../lib/index.js';
import { useTempDirs } from './support/backends.js';
import { runNode } from './support/child.js';
import { ensureBuilt } from './support/dist.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures',
  'read-allocation-child.mjs');
const COUNT = 3000;
const tmp = useTempDirs();

beforeAll(() => ensureBuilt());

async function filledStore(): Promise<string> {
  const dir = tmp.make();
  const store = await MessageStore.open(dir);
  await store.createTopic('T', { queueNums: 4 });
  const producer = store.createProducer({ group: 'fill' });
  const batch = Array.from({ length: 32 }, (_, i) => ({ topic: 'T', body: Buffer.alloc(100, i) }));
  for (let sent = 0; sent < COUNT; sent += batch.length) await producer.sendBatch(batch);
  await store.close();
  return dir;
}

/** Objects of one literal, most kept alive across a young collection: V8 decides to tenure. */
const CONTROL = `const kept = [];
for (let i = 0; i < 2000; i++) kept.push({ i, j: i + 1 });
globalThis.gc({ type: 'minor' });
globalThis.gc({ type: 'minor' });
if (kept.length !== 2000) process.exit(1);`;

describe('reading messages', () => {
  it('is checked with a trace that shows a literal kept alive (the control)', async () => {
    const run = await runNode(['--expose-gc', '--trace-pretenuring-statistics', '-e', CONTROL]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/=> (maybe )?tenure/);
  });

  it.each(['pull', 'push'])('with a %s consumer leaves no allocation site to pretenure',
    async (kind) => {
      const dir = await filledStore();
      const run = await runNode(['--expose-gc', '--trace-pretenuring-statistics', CHILD, dir,
        String(COUNT), kind]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^read \d+$/m);
      // A site whose objects mostly survived is marked "maybe tenure", then "tenure".
      expect(run.stdout.split('\n').filter((line) => /=> (maybe )?tenure/.test(line)))
        .toEqual([]);
    });
});
