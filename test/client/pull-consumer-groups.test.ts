/**
 * Pull consumers in groups: CLUSTERING instances split a topic's queues and take over the queues
 * of one that leaves, from its committed offsets; BROADCASTING instances each read everything,
 * with offsets of their own. And kill -9 of a process polling with autoCommit
 * (test/fixtures/pull-consumer-child.mjs): SPEC §5, delivery is at least once and a group
 * resumes after a crash from its last persisted offset.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type MessageExt, type MessageQueue, type MessageStore, type PullConsumer,
} from '../../lib/index.js';
import { ManualClock } from '../../lib/internal.js';
import { useTempDirs } from '../support/backends.js';
import { ensureBuilt } from '../support/dist.js';
import { drain, expectQueueOrder, names, openStore, sendTo, texts, until } from
  './pull-consumer-helpers.js';

const tmp = useTempDirs();
const FIRST = 'CONSUME_FROM_FIRST_OFFSET';
const QUEUES = 4;

function queueIds(queues: readonly MessageQueue[]): number[] {
  return queues.map((q) => q.queueId).sort((a, b) => a - b);
}

/** Sends `perQueue` messages to every queue of T; returns every body. */
async function fill(store: MessageStore, perQueue: number, prefix = 'm'): Promise<string[]> {
  const producer = store.createProducer({ group: 'pg' });
  const all: string[] = [];
  for (let q = 0; q < QUEUES; q++) {
    const bodies = names(`${prefix}${q}`, perQueue);
    await sendTo(producer, 'T', q, bodies);
    all.push(...bodies);
  }
  return all;
}

function pullConsumer(store: MessageStore, extra: { pullBatchSize?: number;
  messageModel?: 'BROADCASTING' } = {}): PullConsumer {
  const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST, ...extra });
  consumer.subscribe('T', '*');
  return consumer;
}

/** Both consumers' rebalances have settled on a split of all QUEUES. */
async function split(a: PullConsumer, b: PullConsumer): Promise<void> {
  await until('the queues to be split', () =>
    a.assignment().length > 0 && b.assignment().length > 0 &&
    a.assignment().length + b.assignment().length === QUEUES);
}

describe('PullConsumer CLUSTERING group', () => {
  it('two instances split the queues and poll every message exactly once', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: QUEUES });
      const a = pullConsumer(store);
      const b = pullConsumer(store);
      await a.start();
      await b.start();
      await split(a, b);
      expect(a.clientId).toBe('DEFAULT');
      expect(b.clientId).toBe('DEFAULT#2');
      const mineA = queueIds(a.assignment());
      const mineB = queueIds(b.assignment());
      expect(mineA.filter((q) => mineB.includes(q))).toEqual([]);
      expect([...mineA, ...mineB].sort()).toEqual([0, 1, 2, 3]);
      const all = await fill(store, 6);
      const gotA = await drain(a);
      const gotB = await drain(b);
      expect(new Set(gotA.map((m) => m.queueId))).toEqual(new Set(mineA));
      expect(new Set(gotB.map((m) => m.queueId))).toEqual(new Set(mineB));
      expect(texts([...gotA, ...gotB]).sort()).toEqual([...all].sort());
      expectQueueOrder(gotA);
      expectQueueOrder(gotB);
    } finally {
      await store.close();
    }
  });

  it('when one shuts down the other takes over from the committed offsets', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: QUEUES });
      const all = await fill(store, 10);
      const a = pullConsumer(store, { pullBatchSize: 3 });
      const b = pullConsumer(store, { pullBatchSize: 3 });
      await a.start();
      await b.start();
      await split(a, b);
      const seen: MessageExt[] = [];
      for (let i = 0; i < 3; i++) seen.push(...await a.poll(0), ...await b.poll(0));
      await a.shutdown(); // commits what a's polls returned
      await until('b to own every queue', () => b.assignment().length === QUEUES);
      const rest = await drain(b);
      const bodies = texts([...seen, ...rest]);
      expect(bodies.length).toBe(all.length); // nothing repeated ...
      expect(bodies.sort()).toEqual([...all].sort()); // ... nothing skipped
      const byQueue = [...seen, ...rest].sort((x, y) => x.queueId - y.queueId);
      expectQueueOrder(byQueue);
      for (let q = 0; q < QUEUES; q++) expect(b.committed({ topic: 'T', queueId: q })).toBe(10);
    } finally {
      await store.close();
    }
  });

  it('a queue rebalanced away is committed where its polls stopped', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: QUEUES });
      const first = await fill(store, 5, 'x');
      const a = pullConsumer(store);
      // a alone, one poll of every queue: committed only at a next poll (or a rebalance)
      const fromA = await a.poll(0);
      expect(texts(fromA).sort()).toEqual([...first].sort());
      expect(a.committed({ topic: 'T', queueId: 0 })).toBe(0);
      const b = pullConsumer(store);
      await b.start();
      await split(a, b);
      const second = await fill(store, 2, 'y');
      const later = [...await drain(a), ...await drain(b)];
      expect(texts(later).sort()).toEqual([...second].sort());
    } finally {
      await store.close();
    }
  });
});

describe('PullConsumer BROADCASTING', () => {
  it('cannot join a CLUSTERING group, and can start once that group is gone', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: QUEUES });
      const clustering = pullConsumer(store);
      await clustering.start();
      const broadcasting = pullConsumer(store, { messageModel: 'BROADCASTING' });
      await expect(broadcasting.poll(0)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
      await clustering.shutdown();
      await broadcasting.start(); // the refused join left it startable
      expect(queueIds(broadcasting.assignment())).toEqual([0, 1, 2, 3]);
    } finally {
      await store.close();
    }
  });


  it('every instance gets every message, with offsets of its own', async () => {
    const dir = tmp.make();
    const clock = new ManualClock();
    let store = await openStore(dir, { clock });
    let all: string[] = [];
    let firstB: string[] = [];
    try {
      await store.createTopic('T', { queueNums: QUEUES });
      all = await fill(store, 3);
      const a = pullConsumer(store, { messageModel: 'BROADCASTING' });
      const b = pullConsumer(store, { messageModel: 'BROADCASTING', pullBatchSize: 5 });
      await a.start();
      await b.start();
      expect([a.clientId, b.clientId]).toEqual(['DEFAULT', 'DEFAULT#2']);
      expect(queueIds(a.assignment())).toEqual([0, 1, 2, 3]);
      expect(queueIds(b.assignment())).toEqual([0, 1, 2, 3]);
      expect(texts(await drain(a)).sort()).toEqual([...all].sort());
      firstB = texts(await b.poll(0)); // b reads one batch only
      expect(firstB).toHaveLength(5);
      const q = { topic: 'T', queueId: 0 };
      expect(a.committed(q)).toBe(3);
      expect(b.committed(q)).toBeLessThan(3);
    } finally {
      await store.close();
    }
    store = await openStore(dir, { clock });
    try {
      const a = pullConsumer(store, { messageModel: 'BROADCASTING' });
      const b = pullConsumer(store, { messageModel: 'BROADCASTING' });
      await a.start();
      await b.start();
      expect(await drain(a)).toEqual([]); // a had read everything
      const restB = texts(await drain(b));
      expect(restB).toHaveLength(all.length - firstB.length);
      expect([...firstB, ...restB].sort()).toEqual([...all].sort());
    } finally {
      await store.close();
    }
  });
});

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures',
  'pull-consumer-child.mjs');
const PER_QUEUE = 150;

type Offsets = Record<string, number>;

/** The parent's side of the child: complete stdout lines only (a line cut by the kill is lost). */
class Child {
  readonly polled = new Map<number, Map<number, string>>();
  lastPersisted: Offsets | null = null;
  persists = 0;
  readonly lines: string[] = [];
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private partial = '';
  private stderr = '';
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(config: object) {
    this.proc = spawn(process.execPath, [CHILD, JSON.stringify(config)],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop()!;
      for (const line of parts) this.take(line);
    });
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (chunk: string) => { this.stderr += chunk; });
    this.exited = new Promise((resolve) => this.proc.on('close', (code, signal) => {
      this.exit = { code, signal };
      resolve();
    }));
  }

  private take(line: string): void {
    this.lines.push(line);
    const space = line.indexOf(' ');
    const word = space < 0 ? line : line.slice(0, space);
    const rest = line.slice(space + 1);
    if (word === 'polled') {
      for (const item of rest.split(',')) {
        const [q, offset, body] = item.split(':') as [string, string, string];
        let queue = this.polled.get(Number(q));
        if (queue === undefined) this.polled.set(Number(q), queue = new Map());
        queue.set(Number(offset), body);
      }
    } else if (word === 'persisted') {
      this.lastPersisted = JSON.parse(rest) as Offsets;
      this.persists += 1;
    }
  }

  get polledCount(): number {
    return [...this.polled.values()].reduce((n, q) => n + q.size, 0);
  }

  /** Resolves once `test` holds; fails if the child errs or exits first. */
  async until(what: string, test: () => boolean): Promise<void> {
    await until(what, () => test() || this.exit !== null || this.failed !== undefined, 30_000);
    if (this.failed !== undefined || !test()) {
      throw new Error(`child ended before ${what}: ${JSON.stringify(this.exit)}; ` +
        `${this.lines.slice(-3).join(' / ')}; stderr: ${this.stderr.slice(-2000)}`);
    }
  }

  get failed(): string | undefined {
    return this.lines.find((l) => l.startsWith('error '));
  }

  async kill(): Promise<void> {
    if (this.exit === null) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

const children: Child[] = [];
beforeAll(() => ensureBuilt());
afterEach(async () => {
  for (const child of children.splice(0)) await child.kill();
});

describe('PullConsumer after kill -9', () => {
  it('a new consumer resumes from the last persisted offset: nothing before it missing',
    async () => {
      const dir = tmp.make();
      let store = await openStore(dir);
      try {
        await store.createTopic('T', { queueNums: QUEUES });
        const producer = store.createProducer({ group: 'pg' });
        for (let q = 0; q < QUEUES; q++) await sendTo(producer, 'T', q, names(`q${q}`, PER_QUEUE));
      } finally {
        await store.close();
      }
      const child = new Child({ dir, group: 'cg', topic: 'T', pullBatchSize: 8, pauseMs: 3,
        persistEvery: 5, persistIntervalMs: 20 });
      children.push(child);
      await child.until('two persists and 120 messages', () =>
        child.persists >= 2 && child.polledCount >= 120);
      await child.kill();
      expect(child.exit?.signal).toBe('SIGKILL');
      expect(fs.existsSync(path.join(dir, 'abort'))).toBe(true);
      const printed = child.lastPersisted!;

      store = await openStore(dir);
      try {
        const consumer = store.createPullConsumer({ group: 'cg',
          consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', pullBatchSize: 64 });
        consumer.subscribe('T', '*');
        const persisted: number[] = [];
        for (let q = 0; q < QUEUES; q++) {
          const offset = consumer.committed({ topic: 'T', queueId: q });
          const polled = child.polled.get(q) ?? new Map<number, string>();
          // On disk: at least what the child saw persisted, at most past what it polled.
          expect(offset, `queue ${q}`).toBeGreaterThanOrEqual(printed[q] ?? 0);
          expect(offset, `queue ${q}`).toBeLessThanOrEqual(Math.max(-1, ...polled.keys()) + 1);
          // Nothing before the persisted offset is missing: the child read all of it.
          for (let o = 0; o < offset; o++) {
            expect(polled.get(o), `queue ${q} offset ${o}`).toBe(`q${q}-${o}`);
          }
          persisted.push(offset);
        }
        expect(persisted.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
        const again = await drain(consumer);
        for (let q = 0; q < QUEUES; q++) {
          const mine = again.filter((m) => m.queueId === q);
          // Everything from the persisted offset on, in order, with nothing skipped.
          expect(mine.map((m) => m.queueOffset), `queue ${q}`).toEqual(
            Array.from({ length: PER_QUEUE - persisted[q]! }, (_, i) => persisted[q]! + i));
          expect(mine.map((m) => m.body.toString()), `queue ${q}`).toEqual(
            names(`q${q}`, PER_QUEUE - persisted[q]!, persisted[q]!));
        }
      } finally {
        await store.close();
      }
    });
});
