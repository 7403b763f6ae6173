/**
 * Every diagnostics channel of lib/channels.ts publishes what its message type says: flush,
 * recover, retention, rebalance, retry, dlq and trace.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import {
  channels, limits, type ChannelMessages, type ChannelName,
} from '../../lib/index.js';
import { Tracer } from '../../lib/broker/trace/tracer.js';
import type { MessageExt } from '../../lib/broker/message.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, Recorder, startPush, until } from '../support/messaging.js';
import { storeInternals } from '../../lib/internal.js';

const tmp = useTempDirs('pmq-chan-');
const listening: (() => void)[] = [];

afterEach(() => {
  for (const stop of listening.splice(0)) stop();
});

/** Collect what `name` publishes until the test ends. */
function listen<N extends ChannelName>(name: N): ChannelMessages[N][] {
  const got: ChannelMessages[N][] = [];
  const fn = (message: unknown): void => {
    got.push(message as ChannelMessages[N]);
  };
  subscribe(name, fn);
  listening.push(() => unsubscribe(name, fn));
  return got;
}

describe('diagnostics channels', () => {
  it('names every channel under pocketmq:', () => {
    expect(Object.values(channels).sort()).toEqual(['pocketmq:dlq', 'pocketmq:flush',
      'pocketmq:rebalance', 'pocketmq:recover', 'pocketmq:retention', 'pocketmq:retry',
      'pocketmq:trace']);
  });

  it('flush: each fdatasync that moved the flushed offset', async () => {
    const flushes = listen(channels.flush);
    const store = await openStore(tmp.make());
    try {
      const sent = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
      await storeInternals(store).engine.flushed();
      const last = flushes.at(-1)!;
      expect(last).toMatchObject({ log: 'commitlog' });
      expect(last.fromOffset).toBeLessThan(last.toOffset);
      expect(last.toOffset).toBeGreaterThan(sent.commitLogOffset);
      expect(last.durationMs).toBeGreaterThanOrEqual(0);
    } finally {
      await store.close();
    }
  });

  it('recover: what recovery found at each open', async () => {
    const dir = tmp.make();
    const recoveries = listen(channels.recover);
    const store = await openStore(dir);
    await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
    await store.close();
    const again = await openStore(dir);
    await again.close();
    // A new, empty store has nothing to check and publishes nothing (recovery.ts).
    expect(recoveries).toHaveLength(1);
    expect(recoveries[0]).toMatchObject({ startOffset: 0, records: 1, tornTail: false });
    expect(recoveries[0]!.endOffset).toBeGreaterThan(0);
    expect(recoveries[0]!.checkedBytes).toBeGreaterThan(0);
    expect(typeof recoveries[0]!.reason).toBe('string');
  });

  it('retention: segments deleted, the disk ratio and disk-full changes', async () => {
    const passes = listen(channels.retention);
    const store = await openStore(tmp.make(), { commitLogSegmentSize: 64 * 1024,
      fileReservedTimeHours: 0 });
    try {
      expect(passes[0]).toMatchObject({ deletedSegments: 0, diskFull: false,
        diskFullChanged: false });
      expect(passes[0]!.usedRatio).toBeGreaterThan(0);
      expect(passes[0]!.usedRatio).toBeLessThanOrEqual(1);
      const producer = store.createProducer({ group: 'pg', compressMsgBodyOverHowmuch: 2 ** 30 });
      for (let i = 0; i < 8; i++) {
        await producer.send({ topic: 't', body: Buffer.alloc(20_000, i) });
      }
      await storeInternals(store).engine.flushed();
      await storeInternals(store).engine.runRetention();
      const deleted = passes.filter((p) => p.deletedSegments > 0);
      expect(deleted.length).toBeGreaterThan(0);
      expect(deleted[0]!.minOffset).toBe(storeInternals(store).engine.commitLogMinOffset);
      expect(deleted[0]!.minOffset).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
    // A disk fuller than diskFullRatio switches appends off at open.
    const fullDir = tmp.make();
    // One message: the store has files, and the (simulated) disk a use to measure.
    const seeded = await openStore(fullDir);
    await seeded.createProducer({ group: 'g' }).send({ topic: 't', body: 'x' });
    await seeded.close();
    const full = await openStore(fullDir, { diskFullRatio: 1e-9 });
    await full.close();
    expect(passes.at(-1)).toMatchObject({ diskFull: true, diskFullChanged: true });
  });

  it('rebalance: queues added and removed per consumer instance', async () => {
    const changes = listen(channels.rebalance);
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('t', { queueNums: 4 });
      const a = await startPush(store, { group: 'cg', instanceName: 'a' }, 't',
        new Recorder().listener);
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({ group: 'cg', clientId: 'a', messageModel: 'CLUSTERING',
        removed: [] });
      expect(changes[0]!.added).toHaveLength(4);
      expect(changes[0]!.owned).toHaveLength(4);
      await startPush(store, { group: 'cg', instanceName: 'b' }, 't', new Recorder().listener);
      await until(() => changes.some((c) => c.clientId === 'a' && c.removed.length === 2),
        'a gives up two queues');
      await until(() => changes.some((c) => c.clientId === 'b' && c.added.length === 2),
        'b takes two queues');
      await a.shutdown();
      const last = changes.filter((c) => c.clientId === 'a').at(-1)!;
      expect(last).toMatchObject({ added: [], owned: [] });
      expect(last.removed).toHaveLength(2);
      expect(last.removed[0]).toEqual({ topic: 't', queueId: expect.any(Number) as number });
    } finally {
      await store.close();
    }
  });

  it('retry and dlq: each redelivery scheduled, then the move to the DLQ', async () => {
    const retries = listen(channels.retry);
    const dead = listen(channels.dlq);
    const store = await openStore(tmp.make(), { messageDelayLevel: '1ms 2ms 3ms 4ms' });
    try {
      await store.createTopic('t', { queueNums: 1 });
      await startPush(store, { group: 'g', instanceName: 'w', maxReconsumeTimes: 2 }, 't',
        new Recorder(() => 'RECONSUME_LATER').listener);
      const sent = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
      await until(() => dead.length === 1, 'the move to the DLQ');
      expect(retries.map((r) => [r.reconsumeTimes, r.delayMs])).toEqual([[1, 3], [2, 4]]);
      expect(retries[0]).toMatchObject({ group: 'g', clientId: 'w', topic: 't',
        msgId: sent.msgId, queueId: 0, queueOffset: sent.queueOffset, orderly: false });
      expect(dead[0]).toEqual({ group: 'g', topic: 't', msgId: sent.msgId, reconsumeTimes: 2 });
    } finally {
      await store.close();
    }
  });

  it('retry: an orderly queue suspended for a retry in place', async () => {
    const retries = listen(channels.retry);
    const store = await openStore(tmp.make());
    try {
      await store.createTopic('t', { queueNums: 1 });
      await startPush(store, { group: 'og', orderly: true, suspendCurrentQueueTimeMillis: 10 },
        't', new Recorder((m) => m[0]!.reconsumeTimes === 0 ? 'RECONSUME_LATER'
          : 'CONSUME_SUCCESS').listener);
      const sent = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
      await until(() => retries.length === 1, 'the orderly retry');
      expect(retries[0]).toMatchObject({ group: 'og', msgId: sent.msgId, reconsumeTimes: 1,
        delayMs: 10, orderly: true });
    } finally {
      await store.close();
    }
  });

  it('trace: each write, and events dropped by a full buffer', async () => {
    const writes = listen(channels.trace);
    const store = await openStore(tmp.make(), { trace: true });
    try {
      const sent = await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
      expect(await store.queryTrace(sent.msgId)).toHaveLength(1);
      expect(writes[0]).toEqual({ records: 1, events: 1, dropped: 0, droppedTotal: 0,
        error: null });

      // A tracer of its own, handed more events in one turn than its buffer holds.
      const engine = storeInternals(store).engine;
      const tracer = new Tracer({ clock: engine.options.clock, logger: engine.options.logger,
        maxMessageSize: engine.options.maxMessageSize, ensureTopic: () => Promise.resolve(),
        put: (input) => engine.putMessage(input) });
      const over = 5;
      const message = { msgId: sent.msgId, topic: 't', queueId: 0, queueOffset: 0,
        reconsumeTimes: 0 } as MessageExt;
      const messages = Array.from({ length: limits.traceBufferEvents + over }, () => message);
      tracer.consumed({ messages, group: 'g', clientId: 'c', outcome: 'PULLED', timestamp: 0,
        durationMs: 0 });
      await tracer.flush();
      expect(tracer.droppedTotal).toBe(over);
      expect(writes.at(-1)).toMatchObject({ events: limits.traceBufferEvents, dropped: over,
        droppedTotal: over });
      expect(writes.at(-1)!.records)
        .toBe(Math.ceil(limits.traceBufferEvents / limits.traceRecordEvents));
    } finally {
      await store.close();
    }
  });
});
