import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONSUMER_OFFSET_FILE_NAME, ConsumerOffsetManager, MAX_OFFSET_ENTRIES,
} from '../../lib/broker/consumer-offsets.js';
import { ManualClock } from '../../lib/store/clock.js';
import type { IoBackend } from '../../lib/store/io/backend.js';
import type { Logger } from '../../lib/store/options.js';
import { backendCases, nextTurn, useTempDirs } from '../support/backends.js';
import { SimBackend } from '../support/sim-backend.js';
import { errorOf } from '../support/errors.js';

const tmp = useTempDirs();

/** The backend, keeping every atomic write in flight so a test can await timer-driven ones. */
function watched<B extends IoBackend>(inner: B): B & { writes: Promise<void>[] } {
  const spy = Object.assign(Object.create(inner) as B, {
    writes: [] as Promise<void>[],
    writeFileAtomicAsync(filePath: string, data: Uint8Array): Promise<void> {
      const done = inner.writeFileAtomicAsync(filePath, data);
      spy.writes.push(done.catch(() => undefined));
      return done;
    },
  });
  return spy;
}

function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const skip = (): undefined => undefined;
  return { errors, debug: skip, info: skip, warn: skip, error: (m) => { errors.push(m); } };
}

interface Setup {
  readonly dir: string;
  readonly clock: ManualClock;
  make(logger?: Logger): ConsumerOffsetManager;
}

function setup(backend: IoBackend): Setup {
  const dir = path.join(tmp.make(), 'config');
  const clock = new ManualClock();
  return {
    dir, clock,
    make: (logger) => {
      const offsets = new ConsumerOffsetManager({ backend, configDir: dir, clock, logger });
      offsets.load();
      return offsets;
    },
  };
}

describe.each(backendCases)('ConsumerOffsetManager on $kind', (backendCase) => {
  it('keeps persisted offsets across a new instance', async () => {
    const backend = backendCase.make();
    const s = setup(backend);
    const offsets = s.make();
    offsets.commit('cg', 'orders', 0, 10);
    offsets.commit('cg', 'orders', 3, 7);
    s.clock.advance(25);
    offsets.commit('other', 'payments', 1, 2 ** 40);
    await offsets.persist();
    expect(backend.exists(path.join(s.dir, CONSUMER_OFFSET_FILE_NAME))).toBe(true);
    const again = s.make();
    expect(again.groups()).toEqual(['cg', 'other']);
    expect(again.offsetsOf('cg')).toEqual(offsets.offsetsOf('cg'));
    expect(again.query('other', 'payments', 1)).toBe(2 ** 40);
    expect(again.offsetsOf('other')[0]!.lastCommitMs).toBe(s.clock.now());
  });

  it('persists on the timer, not before', async () => {
    const backend = watched(backendCase.make());
    const s = setup(backend);
    const offsets = s.make();
    offsets.start();
    offsets.commit('cg', 't', 0, 5);
    s.clock.advance(4999);
    await nextTurn();
    expect(backend.writes).toHaveLength(0);
    expect(s.make().query('cg', 't', 0)).toBe(-1);
    s.clock.advance(1);
    expect(backend.writes).toHaveLength(1);
    await Promise.all(backend.writes);
    expect(s.make().query('cg', 't', 0)).toBe(5);
    await nextTurn();
    offsets.commit('cg', 't', 0, 6);
    s.clock.advance(5000);
    await Promise.all(backend.writes);
    expect(s.make().query('cg', 't', 0)).toBe(6);
    await offsets.stop();
  });

  it('stop cancels the timer and persists a last time', async () => {
    const backend = watched(backendCase.make());
    const s = setup(backend);
    const offsets = s.make();
    offsets.start();
    expect(s.clock.pendingTimers).toBe(1);
    offsets.commit('cg', 't', 2, 42);
    await offsets.stop();
    expect(s.clock.pendingTimers).toBe(0);
    expect(s.make().query('cg', 't', 2)).toBe(42);
    s.clock.advance(60_000);
    expect(backend.writes).toHaveLength(1);
  });
});

describe('ConsumerOffsetManager', () => {
  it('answers -1 for no offset, and lets an offset move backwards', () => {
    const s = setup(new SimBackend());
    const offsets = s.make();
    expect(offsets.query('cg', 't', 0)).toBe(-1);
    offsets.commit('cg', 't', 0, 100);
    s.clock.advance(10);
    offsets.commit('cg', 't', 0, 3);
    expect(offsets.query('cg', 't', 0)).toBe(3);
    expect(offsets.offsetsOf('cg')).toEqual([
      { topic: 't', queueId: 0, offset: 3, lastCommitMs: s.clock.now() },
    ]);
    expect(offsets.query('cg', 't', 1)).toBe(-1);
    expect(offsets.query('cg2', 't', 0)).toBe(-1);
  });

  it('sorts groups, and offsets by topic then queueId', () => {
    const offsets = setup(new SimBackend()).make();
    offsets.commit('b', 'y', 10, 1);
    offsets.commit('b', 'x', 2, 1);
    offsets.commit('b', 'y', 9, 1);
    offsets.commit('a', 'z', 0, 1);
    offsets.commit('b', 'x', 1, 1);
    expect(offsets.groups()).toEqual(['a', 'b']);
    expect(offsets.offsetsOf('b').map((q) => `${q.topic}:${q.queueId}`))
      .toEqual(['x:1', 'x:2', 'y:9', 'y:10']);
    expect(offsets.offsetsOf('none')).toEqual([]);
  });

  it('removes a topic of a group, or the whole group, durably', async () => {
    const s = setup(new SimBackend());
    const offsets = s.make();
    offsets.commit('a', 'x', 0, 1);
    offsets.commit('a', 'y', 0, 2);
    offsets.commit('b', 'x', 0, 3);
    offsets.remove('a', 'x');
    expect(offsets.offsetsOf('a').map((q) => q.topic)).toEqual(['y']);
    offsets.remove('a', 'y');
    expect(offsets.groups()).toEqual(['b']);
    offsets.remove('b');
    offsets.remove('missing');
    expect(offsets.groups()).toEqual([]);
    await offsets.persist();
    expect(s.make().groups()).toEqual([]);
  });

  it('refuses invalid names, queue ids and offsets', () => {
    const offsets = setup(new SimBackend()).make();
    expect(errorOf(() => offsets.commit('a/b', 't', 0, 0)).property).toBe('group');
    expect(errorOf(() => offsets.commit('cg', '../t', 0, 0)).code).toBe('INVALID_TOPIC');
    for (const queueId of [-1, 1024, 0.5]) {
      const err = errorOf(() => offsets.commit('cg', 't', queueId, 0));
      expect(err.code).toBe('INVALID_OPTION');
      expect(err.property).toBe('queueId');
    }
    for (const offset of [-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1, Infinity]) {
      const err = errorOf(() => offsets.commit('cg', 't', 0, offset));
      expect(err.code).toBe('INVALID_OPTION');
      expect(err.property).toBe('offset');
    }
    offsets.commit('cg', 't', 1023, Number.MAX_SAFE_INTEGER);
    expect(offsets.query('cg', 't', 1023)).toBe(Number.MAX_SAFE_INTEGER);
    expect(offsets.groups()).toEqual(['cg']);
  });

  it('writes only when something changed', async () => {
    const backend = watched(new SimBackend());
    const offsets = setup(backend).make();
    await offsets.persist();
    expect(backend.writes).toHaveLength(0);
    offsets.commit('cg', 't', 0, 1);
    await Promise.all([offsets.persist(), offsets.persist()]);
    await offsets.persist();
    expect(backend.writes).toHaveLength(1);
    offsets.commit('cg', 't', 0, 2);
    await offsets.persist();
    expect(backend.writes).toHaveLength(2);
  });

  it('logs a failed timed persist, stays dirty and writes on the next run', async () => {
    const sim = new SimBackend();
    const backend = watched(sim);
    const s = setup(backend);
    const logger = recordingLogger();
    const offsets = s.make(logger);
    offsets.start();
    offsets.commit('cg', 't', 0, 9);
    sim.failNext('writeFile', 'EIO');
    s.clock.advance(5000);
    await Promise.all(backend.writes);
    await nextTurn();
    expect(logger.errors).toHaveLength(1);
    expect(logger.errors[0]).toContain('timed persist failed');
    expect(s.make().query('cg', 't', 0)).toBe(-1);
    s.clock.advance(5000);
    await Promise.all(backend.writes);
    expect(s.make().query('cg', 't', 0)).toBe(9);
    await offsets.stop();
  });

  it('reports a garbled file as CORRUPT_DATA', async () => {
    const backend = new SimBackend();
    const s = setup(backend);
    const offsets = s.make();
    offsets.commit('cg', 't', 0, 1);
    await offsets.persist();
    const filePath = path.join(s.dir, CONSUMER_OFFSET_FILE_NAME);
    const bytes = backend.readFile(filePath)!;
    backend.writeFile(filePath, bytes.subarray(0, bytes.length - 5));
    const err = errorOf(() => s.make());
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.message).toContain(filePath);
  });

  it('keeps what was persisted through a crash and loses only later commits', async () => {
    const backend = new SimBackend({ seed: 11 });
    const s = setup(backend);
    const offsets = s.make();
    offsets.commit('cg', 'a', 0, 5);
    offsets.commit('cg', 'a', 1, 6);
    await offsets.persist();
    offsets.commit('cg', 'a', 0, 9);
    offsets.commit('cg', 'b', 0, 3);
    offsets.remove('cg', 'a');
    backend.crash({ mode: 'random-subset', tear: true });
    const after = s.make();
    expect(after.offsetsOf('cg').map((q) => [q.topic, q.queueId, q.offset]))
      .toEqual([['a', 0, 5], ['a', 1, 6]]);
  });

  it('holds at most MAX_OFFSET_ENTRIES offsets', async () => {
    const s = setup(new SimBackend());
    const offsets = s.make();
    const perTopic = 1000;
    for (let i = 0; i < MAX_OFFSET_ENTRIES; i++) {
      offsets.commit('cg', `t${Math.floor(i / perTopic)}`, i % perTopic, i);
    }
    const err = errorOf(() => offsets.commit('cg', 'new', 0, 0));
    expect(err.code).toBe('LIMIT_EXCEEDED');
    offsets.commit('cg', 't0', 0, 77);
    offsets.remove('cg', 't0');
    offsets.commit('cg', 'new', 0, 1);
    await offsets.persist();
    expect(s.make().offsetsOf('cg')).toHaveLength(MAX_OFFSET_ENTRIES - perTopic + 1);
  });
});

describe('ConsumerOffsetManager beforePersist', () => {
  it('writes the offsets taken before the hook, and only after the hook resolved', async () => {
    const backend = backendCases[1]!.make();
    const dir = path.join(tmp.make(), 'config');
    const clock = new ManualClock();
    const events: string[] = [];
    let offsets: ConsumerOffsetManager | null = null;
    const hooked = new ConsumerOffsetManager({ backend, configDir: dir, clock,
      beforePersist: async () => {
        events.push('hook');
        // A commit made while the log flushes is not part of this write.
        offsets!.commit('cg', 't', 0, 9);
        await nextTurn();
        events.push('hook done');
      } });
    offsets = hooked;
    hooked.load();
    hooked.commit('cg', 't', 0, 5);
    await hooked.persist();
    events.push('persisted');
    expect(events).toEqual(['hook', 'hook done', 'persisted']);
    const reread = new ConsumerOffsetManager({ backend, configDir: dir, clock });
    reread.load();
    expect(reread.query('cg', 't', 0)).toBe(5);
    await hooked.persist();
    const again = new ConsumerOffsetManager({ backend, configDir: dir, clock });
    again.load();
    expect(again.query('cg', 't', 0)).toBe(9);
  });
});
