/**
 * kill -9 between the steps of retries, delays and dead letters (real processes, real time):
 * a child sends plain, delayed, timed and poison messages under SYNC_FLUSH and consumes them
 * with a listener that fails each a time or two (poison ones always); it is killed at a seeded
 * moment, again and again, and a last run ends with SIGTERM. No acknowledged message is lost:
 * each is handled after its failures, and each poison message reaches %DLQ%<group>.
 * Replay with PMQ_RETRY_CRASH_SEED=<seed>.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/message-store.js';
import { useTempDirs } from '../support/backends.js';
import { ensureBuilt } from '../support/dist.js';
import { until } from '../support/messaging.js';
import { mulberry32 } from '../support/sim-backend.js';

const SEED = Number(process.env.PMQ_RETRY_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const random = mulberry32(SEED);
console.log(`retry-crash.test: seed ${SEED} (replay with PMQ_RETRY_CRASH_SEED=${SEED})`);

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures',
  'retry-child.mjs');
const KINDS = ['plain', 'level', 'timer', 'poison'] as const;
const PER_KIND = 6;
const KILLS = 4;

const tmp = useTempDirs('pmq-retry-crash-');
const children: ChildProcess[] = [];

beforeAll(() => ensureBuilt());
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

interface Run {
  readonly lines: string[];
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly child: ChildProcess;
}

function start(dir: string, send: { body: string; kind: string }[]): Run {
  const child = spawn(process.execPath, [CHILD, JSON.stringify({ dir, send })],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: string[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!; // a line cut by the kill counts for nothing
    lines.push(...parts);
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { lines, done, child };
}

describe('kill -9 between retry, delay and dead-letter steps', () => {
  it('loses no acknowledged message', async () => {
    const dir = tmp.make();
    const send = KINDS.flatMap((kind) => Array.from({ length: PER_KIND },
      (_, i) => ({ body: `${kind}-${i}`, kind })));
    for (let i = send.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [send[i], send[j]] = [send[j]!, send[i]!];
    }
    const all: string[] = [];
    for (let run = 0; run <= KILLS; run++) {
      const r = start(dir, run === 0 ? send : []);
      await until(() => r.lines.includes('ready') &&
        (run > 0 || r.lines.filter((l) => l.startsWith('sent ')).length >= 4),
      `run ${run}: started`, 20_000);
      if (run < KILLS) {
        // The first run is killed among its sends; later ones while retries fall due.
        await sleep(Math.floor(random() * (run === 0 ? 150 : 400)));
        r.child.kill('SIGKILL');
        expect((await r.done).signal).toBe('SIGKILL');
        all.push(...r.lines);
        continue;
      }
      // The last run goes on until every acknowledged message was handled, then stops.
      const sent = new Set(all.concat(r.lines).filter((l) => l.startsWith('sent '))
        .map((l) => l.slice(5)));
      const handled = (): Set<string> => new Set(all.concat(r.lines)
        .filter((l) => l.startsWith('ok ')).map((l) => l.split(' ')[1]!));
      await until(() => [...sent].every((b) => b.startsWith('poison') || handled().has(b)),
        'every acknowledged message handled', 30_000);
      r.child.kill('SIGTERM');
      expect((await r.done).code).toBe(0);
      all.push(...r.lines);
    }
    expect(all.filter((l) => l.startsWith('error'))).toEqual([]);
    const sent = all.filter((l) => l.startsWith('sent ')).map((l) => l.slice(5));
    expect(sent.length).toBeGreaterThan(0);
    // Nothing handled early: each got its failures first (reconsumeTimes counted across kills).
    for (const line of all.filter((l) => l.startsWith('ok '))) {
      const [, body, times] = line.split(' ');
      expect(Number(times), line).toBe(body!.startsWith('plain') ? 1 : 2);
    }
    const store = await MessageStore.openReadOnly(dir);
    try {
      for (const body of sent.filter((b) => b.startsWith('poison'))) {
        await until(async () => (await store.queryMessage({ topic: '%DLQ%rg', key: body }))
          .length > 0, `${body} in the DLQ`, 1000);
      }
    } finally {
      await store.close();
    }
  }, 120_000);
});
