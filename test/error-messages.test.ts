/**
 * Errors of bad input say what was given, the limit, and the option or argument that sets it,
 * and a missing argument is named as missing (INVALID_OPTION, not IO_ERROR or a TypeError).
 */
import { describe, expect, it } from 'vitest';
import { MessageStore } from '../lib/message-store.js';
import { limits } from '../lib/limits.js';
import { StoreEngine } from '../lib/store/store-engine.js';
import { fileCase, useTempDirs } from './support/backends.js';
import { rejection } from './support/errors.js';

const tmp = useTempDirs();
const SEGMENT = 4 * 2 ** 20;

function engine(options: Record<string, unknown> = {}): Promise<StoreEngine> {
  return StoreEngine.open(tmp.make(), { backend: fileCase.make(), commitLogSegmentSize: SEGMENT,
    ...options });
}

describe('errors name the limit and the option', () => {
  it('a body over maxMessageSize names the option and its 4 MiB bound', async () => {
    const store = await engine({ commitLogSegmentSize: 64 * 2 ** 20 });
    try {
      const err = await rejection(store.putMessage({ topic: 't', queueId: 0,
        body: Buffer.alloc(5 * 2 ** 20) }));
      expect(err).toMatchObject({ code: 'MESSAGE_TOO_LARGE', limit: 4 * 2 ** 20,
        actual: 5 * 2 ** 20, property: 'body', message: 'body is 5242880 bytes; ' +
          'maxMessageSize is 4194304 (option maxMessageSize, at most 4 MiB)' });
    } finally {
      await store.close();
    }
  });

  it('store options name their bounds and the option that limits them', async () => {
    const big = await rejection(engine({ maxMessageSize: 5 * 2 ** 20 }));
    expect(big).toMatchObject({ code: 'INVALID_OPTION', property: 'maxMessageSize',
      limit: 4 * 2 ** 20, actual: 5 * 2 ** 20 });
    expect(big.message).toMatch(/^option maxMessageSize must be an integer in \[1, 4194304\] \(at most 4 MiB.*got 5242880$/);
    const tight = await rejection(engine({ commitLogSegmentSize: 65_536,
      maxMessageSize: 40_000 }));
    expect(tight).toMatchObject({ code: 'INVALID_OPTION', property: 'maxMessageSize',
      limit: 28_672, actual: 40_000 });
    expect(tight.message).toContain('with commitLogSegmentSize 65536 it can be at most 28672');
    const queues = await rejection(engine({ defaultTopicQueueNums: 2000 }));
    expect(queues.message).toContain(`at most ${limits.maxQueuesPerTopic} queues per topic`);
  });

  it('properties, keys and property names over their limits say how much and the limit',
    async () => {
      const store = await engine();
      try {
        const put = (patch: Record<string, unknown>) => rejection(store.putMessage({
          topic: 't', queueId: 0, body: Buffer.from('x'), ...patch }));
        const value = await put({ properties: { a: 'x'.repeat(70_000) } });
        expect(value).toMatchObject({ code: 'MESSAGE_TOO_LARGE', limit: 65_535, actual: 70_000 });
        expect(value.message).toMatch(/^property "a": 70000 bytes .*at most 65535 bytes \(64 KiB - 1\)$/);
        const many = await put({ properties: Object.fromEntries(
          Array.from({ length: 2000 }, (_, i) => [`p${i}`, 'x'.repeat(30)])) });
        expect(many.message).toMatch(/^properties, tags and keys take \d+ bytes encoded .*at most 65535/);
        const keys = await put({ keys: ['k'.repeat(70_000)] });
        expect(keys.message).toMatch(/^keys joined by spaces: 70000 bytes/);
        const name = await put({ properties: { ['n'.repeat(300)]: 'v' } });
        expect(name).toMatchObject({ code: 'INVALID_MESSAGE' });
        expect(name.message).toMatch(/is 300 bytes: a property name is 1 to 255 bytes/);
        expect(name.message.length).toBeLessThan(150);
        const queue = await put({ queueId: 5000 });
        expect(queue.message).toContain('a topic has at most 1024 queues');
        const batch = await rejection(store.putMessages(Array.from({ length: 5000 },
          () => ({ topic: 't', queueId: 0, body: Buffer.from('x') }))));
        expect(batch).toMatchObject({ limit: 4096, actual: 5000 });
        expect(batch.message).toContain('(limits.maxBatchRecords), got 5000 messages');
      } finally {
        await store.close();
      }
    });
});

describe('missing and malformed arguments', () => {
  it('an open without a directory is INVALID_OPTION naming it', async () => {
    for (const open of [() => MessageStore.open(undefined as unknown as string),
      () => MessageStore.openReadOnly(undefined as unknown as string),
      () => StoreEngine.open(5 as unknown as string), () => StoreEngine.open('  ')]) {
      const err = await rejection(open());
      expect(err).toMatchObject({ code: 'INVALID_OPTION', property: 'dir' });
      expect(err.message).toMatch(/^the data directory \(argument dir\) must be a path, got /);
    }
  });

  it('queries name a missing or malformed topic, queue id, time, key or maxNum', async () => {
    const store = await MessageStore.open(tmp.make(), { commitLogSegmentSize: SEGMENT });
    try {
      const call = (fn: () => Promise<unknown>) => rejection(fn());
      const any = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      expect(await call(() => any.searchOffset!.call(store))).toMatchObject({
        code: 'INVALID_TOPIC', message: expect.stringMatching(/^topic is missing: /) });
      expect(await call(() => any.searchOffset!.call(store, 't'))).toMatchObject({
        code: 'INVALID_OPTION', property: 'queueId',
        message: expect.stringMatching(/^queueId is missing: an integer in \[0, 1023\]/) });
      expect(await call(() => store.searchOffset('t', 0, 'soon' as unknown as number)))
        .toMatchObject({ code: 'INVALID_OPTION', property: 'timestampMs' });
      expect(await call(() => store.maxOffset('t', 1.5))).toMatchObject({
        code: 'INVALID_OPTION', property: 'queueId' });
      expect(await call(() => store.minOffset('t', 1024))).toMatchObject({
        code: 'INVALID_OPTION', property: 'queueId' });
      expect(await call(() => store.queryMessage({ topic: 't', key: 'k',
        begin: 'yesterday' as unknown as number }))).toMatchObject({
        code: 'INVALID_OPTION', property: 'begin' });
      expect(await call(() => store.consumerProgress(undefined as unknown as string)))
        .toMatchObject({ code: 'INVALID_OPTION', property: 'group',
          message: expect.stringMatching(/^group is missing: a group name is 1 to 120/) });
      expect(await call(() => store.createTopic(undefined as unknown as string)))
        .toMatchObject({ code: 'INVALID_TOPIC', message: expect.stringMatching(/^topic is missing/) });
      expect(await call(() => store.browse({} as { topic: string })))
        .toMatchObject({ code: 'INVALID_TOPIC', message: expect.stringMatching(/^topic is missing/) });
    } finally {
      await store.close();
    }
  });

  it('StoreEngine.queryMessage refuses a bad maxNum or key as INVALID_OPTION', async () => {
    const store = await engine();
    try {
      for (const [args, property] of [[['t', 'k', 1.5], 'maxNum'], [['t', 'k', 0], 'maxNum'],
        [['t'], 'key'], [['t', ''], 'key'], [['t', 'k', 1, 'x'], 'begin']] as const) {
        let caught: unknown = null;
        try {
          (store.queryMessage as (...a: unknown[]) => unknown)(...args);
        } catch (err) {
          caught = err;
        }
        expect(caught).toMatchObject({ code: 'INVALID_OPTION', property });
      }
      expect(store.isOpen).toBe(true);
    } finally {
      await store.close();
    }
  });
});
