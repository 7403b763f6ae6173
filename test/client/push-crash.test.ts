/**
 * kill -9 of a process consuming with a push consumer (test/fixtures/push-consumer-child.mjs),
 * at a seeded random moment, twice, then the rest consumed here with the same group. SPEC §5:
 * delivery is at least once and a group resumes from its last persisted offset. So across the
 * runs every message is handled, and at each restart the persisted offset of a queue never passes
 * a message no earlier run handled; a run repeats only messages at or after it.
 * Replay a failure with PMQ_PUSH_CRASH_SEED=<seed> npx vitest run test/client/push-crash.test.ts.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MessageStore } from '../../lib/message-store.js';
import { useTempDirs } from '../support/backends.js';
import { spawnLines } from '../support/child.js';
import { ensureBuilt } from '../support/dist.js';
import { openStore, Recorder, sendMany, startPush, until } from '../support/messaging.js';
import { mulberry32 } from '../support/sim-backend.js';

const SEED = Number(process.env.PMQ_PUSH_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const random = mulberry32(SEED);
console.log(`push-crash.test: seed ${SEED} (replay with PMQ_PUSH_CRASH_SEED=${SEED})`);

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures',
  'push-consumer-child.mjs');
const TOPIC = 'crash';
const QUEUES = 4;
const MESSAGES = 3000;
const MAX_KILL_DELAY_MS = 300;

const tmp = useTempDirs();
const children: ChildProcess[] = [];

beforeAll(() => ensureBuilt());
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** `queueId/offset` of each message handled, per run. */
type Handled = Set<string>;

/** Run the child until it handled a few messages, then SIGKILL it after a seeded delay. */
async function runAndKill(dir: string, context: string): Promise<Handled> {
  const handled: Handled = new Set();
  const lines: string[] = [];
  const child = spawnLines(CHILD, { dir, group: 'cg', topic: TOPIC, persistMs: 5, threads: 4 },
    (line) => {
      lines.push(line);
      const [word, q, offset] = line.split(' ');
      if (word === 'handled') handled.add(`${q}/${offset}`);
    });
  children.push(child.process);
  await until(() => handled.size >= 20 || child.exited, `${context}: first messages`, 30_000);
  expect(child.exited, `${context}: ${lines.slice(-3).join(' / ')} ${child.stderr}`)
    .toBe(false);
  const delayMs = Math.floor(random() * MAX_KILL_DELAY_MS);
  await sleep(delayMs);
  child.process.kill('SIGKILL');
  expect(await child.closed, `${context}, killed after ${delayMs} ms`).toBe('SIGKILL');
  expect(lines.filter((l) => l.startsWith('error'))).toEqual([]);
  return handled;
}

/** Persisted offsets never pass a message no run before handled. */
async function checkResumePoint(store: MessageStore, before: readonly Handled[],
  context: string): Promise<Map<number, number>> {
  const resume = new Map<number, number>();
  for (const p of await store.consumerProgress('cg')) {
    resume.set(p.queueId, p.consumerOffset);
    for (let offset = 0; offset < p.consumerOffset; offset++) {
      const key = `${p.queueId}/${offset}`;
      expect(before.some((h) => h.has(key)), `${context}: ${key} below the persisted offset ` +
        `${p.consumerOffset} was never handled`).toBe(true);
    }
  }
  return resume;
}

/** A run starts where the group's persisted offsets say: nothing below them comes again. */
function checkRunStartsAt(run: Handled, resume: Map<number, number>, context: string): void {
  for (const key of run) {
    const [q, offset] = key.split('/').map(Number) as [number, number];
    expect(offset, `${context}: ${key} repeated below the resume point`)
      .toBeGreaterThanOrEqual(resume.get(q) ?? 0);
  }
}

describe('kill -9 of a push-consuming process', () => {
  it('every message is handled at least once, repeats only past the persisted offset',
    async () => {
      const dir = tmp.make();
      let store = await openStore(dir);
      try {
        await store.createTopic(TOPIC, { queueNums: QUEUES });
        await sendMany(store.createProducer({ group: 'pg' }), TOPIC, MESSAGES);
      } finally {
        await store.close();
      }
      const runs: Handled[] = [];
      for (let i = 1; i <= 2; i++) {
        const context = `run ${i} (PMQ_PUSH_CRASH_SEED=${SEED})`;
        let resume: Map<number, number> | null = null;
        if (i > 1) {
          store = await openStore(dir);
          try {
            resume = await checkResumePoint(store, runs, context);
          } finally {
            await store.close();
          }
        }
        const run = await runAndKill(dir, context);
        if (resume !== null) checkRunStartsAt(run, resume, context);
        runs.push(run);
      }
      store = await openStore(dir);
      try {
        const context = `after the kills (PMQ_PUSH_CRASH_SEED=${SEED})`;
        const resume = await checkResumePoint(store, runs, context);
        const rec = new Recorder();
        // The child's settings: a queue without a persisted offset starts at its first message.
        await startPush(store, { group: 'cg', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' },
          TOPIC, rec.listener);
        const last: Handled = new Set();
        const all = (): number => new Set([...runs.flatMap((r) => [...r]), ...last]).size;
        await until(() => {
          for (const m of rec.messages) last.add(`${m.queueId}/${m.queueOffset}`);
          return all() >= MESSAGES;
        }, `${context}: every message handled`, 30_000);
        checkRunStartsAt(last, resume, context);
        expect(runs[0]!.size).toBeGreaterThan(0);
        expect(all()).toBe(MESSAGES);
      } finally {
        await store.close();
      }
    });
});
