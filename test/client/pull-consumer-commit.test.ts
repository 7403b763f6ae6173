/**
 * PullConsumer commits (SPEC §6: with autoCommit what a poll returned is committed at the next
 * poll and at shutdown; without it nothing is committed until `commit()`, which writes
 * config/consumerOffset.json), `for await`, and tag and SQL92 filters.
 */
import { describe, expect, it } from 'vitest';
import { MessageSelector, type MessageExt } from '../../lib/index.js';
import { ManualClock } from '../../lib/internal.js';
import { useTempDirs } from '../support/backends.js';
import { storeFiles } from '../support/test-backend.js';
import {
  drain, expectQueueOrder, names, openStore, sendTo, texts, thrownCode, until,
} from './pull-consumer-helpers.js';

const tmp = useTempDirs();
const FIRST = 'CONSUME_FROM_FIRST_OFFSET';
const q0 = { topic: 'T', queueId: 0 };

/** The offsets config file's data, read straight from disk. */
function offsetsOnDisk(dir: string): Record<string, Record<string, Record<string, unknown>>> {
  const text = storeFiles(dir).readFile('config/consumerOffset.json')!.toString('utf8');
  const framed = JSON.parse(text) as { data: { offsets: never } };
  return framed.data.offsets;
}

describe('PullConsumer autoCommit', () => {
  it('commits what a poll returned at the next poll and at shutdown', async () => {
    const dir = tmp.make();
    const store = await openStore(dir, { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 1 });
      await sendTo(store.createProducer({ group: 'pg' }), 'T', 0, names('m', 10));
      const first = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST,
        pullBatchSize: 3 });
      first.subscribe('T', '*');
      expect(texts(await first.poll(0))).toEqual(names('m', 3));
      expect(first.committed(q0)).toBe(0); // the start offset, nothing returned yet
      expect(texts(await first.poll(0))).toEqual(names('m', 3, 3));
      expect(first.committed(q0)).toBe(3);
      expect(texts(await first.poll(0))).toEqual(names('m', 3, 6));
      expect(first.committed(q0)).toBe(6);
      await first.shutdown();
      expect(first.committed(q0)).toBe(9);
      const second = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      second.subscribe('T', '*');
      expect(texts(await drain(second))).toEqual(['m-9']);
    } finally {
      await store.close();
    }
  });

  it('a group resumes after store close and reopen, nothing skipped or repeated', async () => {
    const dir = tmp.make();
    const clock = new ManualClock();
    const all = names('m', 20);
    let store = await openStore(dir, { clock });
    const seen: MessageExt[] = [];
    try {
      await store.createTopic('T', { queueNums: 4 });
      const producer = store.createProducer({ group: 'pg' });
      for (let q = 0; q < 4; q++) await sendTo(producer, 'T', q, all.slice(q * 5, q * 5 + 5));
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST,
        pullBatchSize: 3 });
      consumer.subscribe('T', '*');
      for (let i = 0; i < 3; i++) seen.push(...await consumer.poll(0));
      expect(seen).toHaveLength(9);
    } finally {
      await store.close(); // shuts the consumer down: commits and persists
    }
    store = await openStore(dir, { clock });
    try {
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      consumer.subscribe('T', '*');
      const rest = await drain(consumer);
      expect(rest).toHaveLength(11);
      expectQueueOrder([...seen, ...rest].sort((a, b) => a.queueId - b.queueId));
      expect(texts([...seen, ...rest]).sort()).toEqual([...all].sort());
    } finally {
      await store.close();
    }
  });
});

describe('PullConsumer manual commit', () => {
  it('commits nothing until commit(); a restarted group re-reads the rest', async () => {
    const dir = tmp.make();
    const store = await openStore(dir, { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 1 });
      await sendTo(store.createProducer({ group: 'pg' }), 'T', 0, names('m', 8));
      const first = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST,
        autoCommit: false, pullBatchSize: 3 });
      first.subscribe('T', '*');
      expect(texts(await first.poll(0))).toEqual(names('m', 3));
      expect(texts(await first.poll(0))).toEqual(names('m', 3, 3));
      expect(first.committed(q0)).toBe(-1);
      await first.shutdown();
      expect(first.committed(q0)).toBe(-1);

      const second = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST,
        autoCommit: false, pullBatchSize: 3 });
      second.subscribe('T', '*');
      expect(texts(await second.poll(0))).toEqual(names('m', 3)); // read again
      await second.commit();
      expect(second.committed(q0)).toBe(3);
      expect(texts(await second.poll(0))).toEqual(names('m', 3, 3));
      await second.shutdown(); // m-3..m-5 were returned but never committed

      const third = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      third.subscribe('T', '*');
      expect(texts(await drain(third))).toEqual(names('m', 5, 3));
    } finally {
      await store.close();
    }
  });

  it('commit() writes config/consumerOffset.json, read back after a reopen', async () => {
    const dir = tmp.make();
    const clock = new ManualClock(); // never advanced: the timed persist never runs
    let store = await openStore(dir, { clock });
    try {
      await store.createTopic('T', { queueNums: 2 });
      const producer = store.createProducer({ group: 'pg' });
      await sendTo(producer, 'T', 0, names('a', 4));
      await sendTo(producer, 'T', 1, names('b', 2));
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST,
        autoCommit: false });
      consumer.subscribe('T', '*');
      expect(await drain(consumer)).toHaveLength(6);
      await consumer.commit();
      const onDisk = offsetsOnDisk(dir);
      expect(onDisk.cg?.T?.['0']).toMatchObject({ offset: 4 });
      expect(onDisk.cg?.T?.['1']).toMatchObject({ offset: 2 });
    } finally {
      await store.close();
    }
    store = await openStore(dir, { clock });
    try {
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      expect(consumer.committed(q0)).toBe(4);
      expect(consumer.committed({ topic: 'T', queueId: 1 })).toBe(2);
      const progress = await store.consumerProgress('cg');
      expect(progress.map((p) => [p.queueId, p.consumerOffset, p.lag])).toEqual(
        [[0, 4, 0], [1, 2, 0]]);
    } finally {
      await store.close();
    }
  });
});

describe('PullConsumer for await', () => {
  it('yields messages in order and ends after shutdown()', async () => {
    const clock = new ManualClock();
    const store = await openStore(tmp.make(), { clock });
    try {
      await store.createTopic('T', { queueNums: 1 });
      const producer = store.createProducer({ group: 'pg' });
      await sendTo(producer, 'T', 0, names('m', 5));
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST,
        pullBatchSize: 2 });
      consumer.subscribe('T', '*');
      const got: MessageExt[] = [];
      const loop = (async () => {
        for await (const m of consumer) got.push(m);
      })();
      await until('5 messages', () => got.length === 5);
      await sendTo(producer, 'T', 0, ['m-5']); // wakes the waiting poll
      await until('6 messages', () => got.length === 6);
      await consumer.shutdown();
      await loop; // ends without the clock moving
      expect(texts(got)).toEqual(names('m', 6));
      expectQueueOrder(got);
      expect(consumer.committed(q0)).toBe(6);
    } finally {
      await store.close();
    }
  });

  it('leaving the loop early commits only what it yielded', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 1 });
      await sendTo(store.createProducer({ group: 'pg' }), 'T', 0, names('m', 10));
      const first = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      first.subscribe('T', '*');
      const got: string[] = [];
      for await (const m of first) {
        got.push(m.body.toString());
        if (got.length === 3) break;
      }
      await first.shutdown();
      expect(got).toEqual(names('m', 3));
      expect(first.committed(q0)).toBe(3);
      const second = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      second.subscribe('T', '*');
      expect(texts(await drain(second))).toEqual(names('m', 7, 3));
    } finally {
      await store.close();
    }
  });
});

describe('PullConsumer filters', () => {
  it("a tag expression 'TagA || TagB' delivers only those tags", async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 1 });
      const producer = store.createProducer({ group: 'pg' });
      const tags = ['TagA', 'TagB', 'TagC', 'TagA', 'Aa', 'TagB'];
      for (const [i, tag] of tags.entries()) {
        await sendTo(producer, 'T', 0, [`m-${i}`], { tags: tag });
      }
      await sendTo(producer, 'T', 0, ['untagged']);
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      consumer.subscribe('T', 'TagA || TagB');
      const got = await drain(consumer);
      expect(texts(got)).toEqual(['m-0', 'm-1', 'm-3', 'm-5']);
      expect(got.map((m) => m.tags)).toEqual(['TagA', 'TagB', 'TagA', 'TagB']);
      expect(consumer.position(q0)).toBe(7); // past the messages filtered out
    } finally {
      await store.close();
    }
  });

  it('MessageSelector.bySql delivers only messages whose properties match', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic('T', { queueNums: 2 });
      const producer = store.createProducer({ group: 'pg' });
      const rows: [string, string, number][] = [
        ['a', 'eu', 150], ['b', 'us', 500], ['c', 'eu', 100], ['d', 'eu', 101], ['e', 'asia', 7],
      ];
      for (const [i, [body, region, amount]] of rows.entries()) {
        await sendTo(producer, 'T', i % 2, [body], { properties: { region, amount } });
      }
      await sendTo(producer, 'T', 0, ['no-props']);
      const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: FIRST });
      consumer.subscribe('T', MessageSelector.bySql("region = 'eu' AND amount > 100"));
      expect(texts(await drain(consumer)).sort()).toEqual(['a', 'd']);
    } finally {
      await store.close();
    }
  });

  it('a malformed SQL or tag expression is INVALID_FILTER', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      for (const sql of ['a IN ()', 'a >', '(a = 1', "region = 'eu' AND"]) {
        expect(thrownCode(() => MessageSelector.bySql(sql)), sql).toBe('INVALID_FILTER');
      }
      const consumer = store.createPullConsumer({ group: 'cg' });
      for (const tags of ['TagA ||', '|| TagA', 'TagA | TagB', 'Tag A', '* || TagA']) {
        expect(thrownCode(() => consumer.subscribe('T', tags)), tags).toBe('INVALID_FILTER');
      }
      consumer.subscribe('T', 'TagA');
      expect(consumer.assignment()).toEqual([]);
    } finally {
      await store.close();
    }
  });
});
