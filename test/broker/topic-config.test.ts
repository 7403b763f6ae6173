import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MAX_TOPICS, TOPIC_CONFIG_FILE_NAME, TopicConfigManager,
} from '../../lib/broker/topic-config.js';
import { checksum32 } from '../../lib/store/checksum.js';
import type { IoBackend } from '../../lib/store/io/backend.js';
import type { Logger } from '../../lib/store/options.js';
import { backendCases, nextTurn, useTempDirs } from '../support/backends.js';
import { SimBackend } from '../support/sim-backend.js';
import { errorOf, rejection } from '../support/errors.js';

const tmp = useTempDirs();

function recordingLogger(): Logger & { errors: string[]; infos: string[] } {
  const errors: string[] = [];
  const infos: string[] = [];
  return {
    errors, infos,
    debug: () => undefined, warn: () => undefined,
    info: (m) => { infos.push(m); }, error: (m) => { errors.push(m); },
  };
}

function manager(backend: IoBackend, configDir: string, logger?: Logger): TopicConfigManager {
  return new TopicConfigManager({ backend, configDir, defaultQueueNums: 4, logger });
}

/** A fresh manager on the same disk: what a reopened store would see. */
function reloaded(backend: IoBackend, configDir: string): TopicConfigManager {
  const again = manager(backend, configDir);
  again.load([]);
  return again;
}

describe.each(backendCases)('TopicConfigManager on $kind', (backendCase) => {
  it('auto-creates with defaultQueueNums and persists across instances', async () => {
    const backend = backendCase.make();
    const dir = path.join(tmp.make(), 'config');
    const topics = manager(backend, dir);
    topics.load([]);
    expect(topics.get('orders')).toBeUndefined();
    expect(topics.getOrCreate('orders')).toEqual({ topic: 'orders', queueNums: 4 });
    expect(topics.getOrCreate('orders')).toBe(topics.get('orders'));
    await topics.flush();
    expect(backend.exists(path.join(dir, TOPIC_CONFIG_FILE_NAME))).toBe(true);
    expect(reloaded(backend, dir).list()).toEqual([{ topic: 'orders', queueNums: 4 }]);
  });

  it('create resolves once the topic is durable', async () => {
    const backend = backendCase.make();
    const dir = path.join(tmp.make(), 'config');
    const topics = manager(backend, dir);
    topics.load([]);
    expect(await topics.create('payments', 8)).toEqual({ topic: 'payments', queueNums: 8 });
    expect(reloaded(backend, dir).get('payments')).toEqual({ topic: 'payments', queueNums: 8 });
  });
});

describe('TopicConfigManager', () => {
  it('lets a topic grow but not shrink, and checks queueNums', async () => {
    const topics = manager(new SimBackend(), tmp.make());
    topics.load([]);
    await topics.create('t', 4);
    expect((await topics.create('t', 6)).queueNums).toBe(6);
    expect((await topics.create('t', 6)).queueNums).toBe(6);
    const shrink = await rejection(topics.create('t', 2));
    expect(shrink.code).toBe('INVALID_OPTION');
    expect(shrink.message).toContain('not shrink');
    for (const bad of [0, -1, 1025, 1.5, Number.NaN]) {
      const err = await rejection(topics.create('u', bad));
      expect(err.code).toBe('INVALID_OPTION');
      expect(err.property).toBe('queueNums');
    }
    expect((await topics.create('u', 1024)).queueNums).toBe(1024);
    expect(topics.get('t')?.queueNums).toBe(6);
  });

  it('checks topic names and defaultQueueNums', async () => {
    const backend = new SimBackend();
    const topics = manager(backend, tmp.make());
    expect(errorOf(() => topics.getOrCreate('a/b')).code).toBe('INVALID_TOPIC');
    expect((await rejection(topics.create('', 1))).code).toBe('INVALID_TOPIC');
    const err = errorOf(() => new TopicConfigManager({ backend, configDir: tmp.make(),
      defaultQueueNums: 0 }));
    expect(err.code).toBe('INVALID_OPTION');
    expect(err.property).toBe('defaultQueueNums');
  });

  it('lists topics sorted by name', () => {
    const topics = manager(new SimBackend(), tmp.make());
    for (const name of ['b', 'B', 'a', '%DLQ%x', 'a_1']) topics.getOrCreate(name);
    expect(topics.list().map((t) => t.topic)).toEqual(['%DLQ%x', 'B', 'a', 'a_1', 'b']);
  });

  it('merges topics the store holds but the file lacks or undercounts', async () => {
    const backend = new SimBackend();
    const dir = tmp.make();
    const first = manager(backend, dir);
    await first.create('known', 4);
    await first.create('wide', 16);
    const logger = recordingLogger();
    const topics = manager(backend, dir, logger);
    topics.load([
      { topic: 'known', queueIds: [0, 1, 2, 3, 4, 5] },
      { topic: 'wide', queueIds: [0, 3] },
      { topic: 'small', queueIds: [0, 1] },
      { topic: 'big', queueIds: [7, 0] },
      { topic: 'empty', queueIds: [] },
    ]);
    expect(topics.list()).toEqual([
      { topic: 'big', queueNums: 8 },
      { topic: 'empty', queueNums: 4 },
      { topic: 'known', queueNums: 6 },
      { topic: 'small', queueNums: 4 },
      { topic: 'wide', queueNums: 16 },
    ]);
    expect(logger.infos.join()).toContain('big');
    await topics.flush();
    expect(reloaded(backend, dir).list()).toEqual(topics.list());
  });

  it('recovers an auto-created topic lost in a crash from the store', () => {
    const backend = new SimBackend();
    const dir = tmp.make();
    const topics = manager(backend, dir);
    topics.load([]);
    topics.getOrCreate('late');
    backend.crash();
    expect(reloaded(backend, dir).get('late')).toBeUndefined();
    const again = manager(backend, dir);
    again.load([{ topic: 'late', queueIds: [0, 2] }]);
    expect(again.get('late')).toEqual({ topic: 'late', queueNums: 4 });
  });

  it('logs a failed background save and writes again on flush', async () => {
    const backend = new SimBackend();
    const dir = tmp.make();
    const logger = recordingLogger();
    const topics = manager(backend, dir, logger);
    topics.load([]);
    backend.failNext('writeFile', 'EIO');
    topics.getOrCreate('t1');
    await nextTurn();
    expect(logger.errors).toHaveLength(1);
    expect(logger.errors[0]).toContain('background save failed');
    expect(reloaded(backend, dir).get('t1')).toBeUndefined();
    await topics.flush();
    expect(reloaded(backend, dir).get('t1')).toEqual({ topic: 't1', queueNums: 4 });
  });

  it('rejects flush while the disk fails, then resolves once a write succeeds', async () => {
    const backend = new SimBackend();
    const dir = tmp.make();
    const topics = manager(backend, dir, recordingLogger());
    backend.failNext('writeFile', 'EIO', 2);
    topics.getOrCreate('t1');
    expect((await rejection(topics.flush())).code).toBe('IO_ERROR');
    expect((await rejection(topics.create('t2', 2))).code).toBe('IO_ERROR');
    expect(topics.get('t2')?.queueNums).toBe(2);
    await topics.flush();
    expect(reloaded(backend, dir).list().map((t) => t.topic)).toEqual(['t1', 't2']);
  });

  it('reports a damaged file as CORRUPT_DATA', () => {
    const backend = new SimBackend();
    const dir = tmp.make();
    const filePath = path.join(dir, TOPIC_CONFIG_FILE_NAME);
    backend.mkdir(dir);
    backend.writeFile(filePath, Buffer.from('{"version":1,"checksum":"x","data":{"topics":['));
    expect(errorOf(() => manager(backend, dir).load([])).code).toBe('CORRUPT_DATA');
  });

  it('refuses invalid entries in the file as CORRUPT_DATA', async () => {
    const backend = new SimBackend();
    const dir = tmp.make();
    const topics = manager(backend, dir);
    await topics.create('good', 2);
    const filePath = path.join(dir, TOPIC_CONFIG_FILE_NAME);
    const good = backend.readFile(filePath)!;
    for (const entries of [
      [{ topic: '../x', queueNums: 1 }],
      [{ topic: 'a', queueNums: 0 }],
      [{ topic: 'a', queueNums: 1 }, { topic: 'a', queueNums: 2 }],
    ]) {
      const data = { topics: entries };
      const json = JSON.stringify(data);
      // Re-frame with a valid checksum, so parse is what refuses it.
      const sum = (checksum32(Buffer.from(json), 0, Buffer.byteLength(json)) >>> 0)
        .toString(16).padStart(8, '0');
      backend.writeFile(filePath, Buffer.from(`{"version":1,"checksum":"${sum}","data":${json}}`));
      const err = errorOf(() => manager(backend, dir).load([]));
      expect(err.code).toBe('CORRUPT_DATA');
      expect(err.path).toBe(filePath);
    }
    backend.writeFile(filePath, good);
    expect(reloaded(backend, dir).list()).toEqual([{ topic: 'good', queueNums: 2 }]);
  });

  it('refuses a queue id out of range in the store as CORRUPT_DATA', () => {
    const topics = manager(new SimBackend(), tmp.make());
    const err = errorOf(() => topics.load([{ topic: 't', queueIds: [1024] }]));
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.topic).toBe('t');
  });

  it('holds at most MAX_TOPICS topics', async () => {
    const backend = new SimBackend();
    const dir = tmp.make();
    const topics = manager(backend, dir);
    for (let i = 0; i < MAX_TOPICS; i++) topics.getOrCreate(`t${i}`);
    const err = errorOf(() => topics.getOrCreate('one-more'));
    expect(err.code).toBe('LIMIT_EXCEEDED');
    expect(err.limit).toBe(MAX_TOPICS);
    expect((await rejection(topics.create('one-more', 1))).code).toBe('LIMIT_EXCEEDED');
    expect(topics.getOrCreate('t0').queueNums).toBe(4);
    await topics.flush();
    expect(reloaded(backend, dir).list()).toHaveLength(MAX_TOPICS);
  });
});
