import { describe, expect, it } from 'vitest';
import {
  MessageStore, PocketMQError, type MessageStoreOptions, type SendResult,
} from '../../lib/index.js';
import { useTempDirs } from '../support/backends.js';
import { backendOptions, storeFiles } from '../support/test-backend.js';

const tmp = useTempDirs();

function open(dir: string, options: MessageStoreOptions = {}): Promise<MessageStore> {
  return MessageStore.open(dir, { commitLogSegmentSize: 4 * 2 ** 20, ...backendOptions(dir),
    ...options });
}

async function withStore(dir: string, options: MessageStoreOptions,
  fn: (store: MessageStore) => Promise<void>): Promise<void> {
  const store = await open(dir, options);
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

async function sendMany(store: MessageStore, topic: string, n: number): Promise<SendResult[]> {
  const producer = store.createProducer({ group: 'pg' });
  const out: SendResult[] = [];
  for (let i = 0; i < n; i++) out.push(await producer.send({ topic, body: `${topic}-${i}` }));
  return out;
}

function queueCounts(results: readonly SendResult[]): number[] {
  const counts: number[] = [];
  for (const r of results) counts[r.queueId] = (counts[r.queueId] ?? 0) + 1;
  return [...counts].map((c) => c ?? 0);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PocketMQError);
  return (err as PocketMQError).code;
}

describe('topics', () => {
  it('spreads sends over the queues createTopic asked for', async () => {
    await withStore(tmp.make(), {}, async (store) => {
      const config = await store.createTopic('t', { queueNums: 8 });
      expect(config).toEqual({ topic: 't', queueNums: 8 });
      const results = await sendMany(store, 't', 16);
      expect(queueCounts(results)).toEqual([2, 2, 2, 2, 2, 2, 2, 2]);
      for (let q = 0; q < 8; q++) expect(await store.maxOffset('t', q)).toBe(2);
      expect(store.topics()).toEqual([{ topic: 't', queueNums: 8 }]);
    });
  });

  it('auto-creates a topic on first send with defaultTopicQueueNums (default 4)', async () => {
    await withStore(tmp.make(), {}, async (store) => {
      expect(queueCounts(await sendMany(store, 'auto', 8))).toEqual([2, 2, 2, 2]);
      expect(store.topics()).toEqual([{ topic: 'auto', queueNums: 4 }]);
      const plain = await store.createTopic('plain');
      expect(plain.queueNums).toBe(4);
    });
    await withStore(tmp.make(), { defaultTopicQueueNums: 3 }, async (store) => {
      expect(queueCounts(await sendMany(store, 'auto', 9))).toEqual([3, 3, 3]);
      expect(store.topics()).toEqual([{ topic: 'auto', queueNums: 3 }]);
    });
  });

  it('keeps topics across close and reopen', async () => {
    const dir = tmp.make();
    await withStore(dir, {}, async (store) => {
      await store.createTopic('created', { queueNums: 6 });
      await sendMany(store, 'auto', 1);
      await store.createTopic('empty', { queueNums: 2 });
    });
    await withStore(dir, {}, async (store) => {
      expect(store.topics()).toEqual([{ topic: 'auto', queueNums: 4 },
        { topic: 'created', queueNums: 6 }, { topic: 'empty', queueNums: 2 }]);
      expect(queueCounts(await sendMany(store, 'created', 6))).toEqual([1, 1, 1, 1, 1, 1]);
    });
  });

  it('grows a topic, refuses to shrink it, and persists the growth', async () => {
    const dir = tmp.make();
    await withStore(dir, {}, async (store) => {
      await sendMany(store, 'g', 4);
      expect((await store.createTopic('g', { queueNums: 6 })).queueNums).toBe(6);
      expect(queueCounts(await sendMany(store, 'g', 6))).toEqual([1, 1, 1, 1, 1, 1]);
      expect(await codeOf(store.createTopic('g', { queueNums: 5 }))).toBe('INVALID_OPTION');
      expect(await codeOf(store.createTopic('g', { queueNums: 1 }))).toBe('INVALID_OPTION');
      expect((await store.createTopic('g', { queueNums: 6 })).queueNums).toBe(6);
      expect(store.topics()).toEqual([{ topic: 'g', queueNums: 6 }]);
      for (const bad of [0, -1, 1.5, 1025, Number.NaN]) {
        expect(await codeOf(store.createTopic('h', { queueNums: bad }))).toBe('INVALID_OPTION');
      }
      expect(store.topics().map((t) => t.topic)).toEqual(['g']);
    });
    await withStore(dir, {}, async (store) => {
      expect(store.topics()).toEqual([{ topic: 'g', queueNums: 6 }]);
      expect(await store.maxOffset('g', 5)).toBe(1);
    });
  });

  it('refuses reserved and invalid names with INVALID_TOPIC', async () => {
    await withStore(tmp.make(), {}, async (store) => {
      const names: unknown[] = ['%RETRY%x', '%DLQ%x', 'SCHEDULE_TOPIC_x', 'RMQ_SYS_x', '',
        'a b', 'a/b', '..', '../escape', 'x'.repeat(128), 'é', 5, null, undefined];
      for (const name of names) {
        expect(await codeOf(store.createTopic(name as string)), String(name)).toBe('INVALID_TOPIC');
      }
      expect(store.topics()).toEqual([]);
      expect((await store.createTopic('x'.repeat(127))).queueNums).toBe(4);
      expect((await store.createTopic('ok_%|-9')).queueNums).toBe(4);
    });
  });

  it('lists topics the commit log holds when config/topics.json is lost', async () => {
    const dir = tmp.make();
    let sent: SendResult[] = [];
    await withStore(dir, {}, async (store) => {
      sent = await sendMany(store, 'lost', 8);
      await store.createTopic('wide', { queueNums: 8 });
      await store.createProducer({ group: 'pg' }).send({ topic: 'wide', body: 'w' },
        { selector: () => 5 });
    });
    const files = storeFiles(dir);
    expect(files.exists('config/topics.json')).toBe(true);
    files.unlink('config/topics.json');
    await withStore(dir, {}, async (store) => {
      const topics = store.topics();
      expect(topics.find((t) => t.topic === 'lost')).toEqual({ topic: 'lost', queueNums: 4 });
      // Only queue 5 held a message: the topic comes back with at least 6 queues.
      expect(topics.find((t) => t.topic === 'wide')!.queueNums).toBeGreaterThanOrEqual(6);
      for (const [i, r] of sent.entries()) {
        expect((await store.viewMessage(r.msgId))!.body.toString()).toBe(`lost-${i}`);
      }
      const more = await store.createProducer({ group: 'pg' }).send({ topic: 'lost', body: 'x' },
        { selector: (n) => (n === 4 ? 0 : -1) });
      expect(more.queueOffset).toBe(2);
    });
    await withStore(dir, {}, async (store) => {
      expect(store.topics().find((t) => t.topic === 'lost')).toEqual(
        { topic: 'lost', queueNums: 4 });
    });
  });
});
