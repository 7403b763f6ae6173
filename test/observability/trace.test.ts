/**
 * Message trace (lib/client/trace.ts, store option `trace`): PUB events for sends, SUB events
 * for listener calls and polls, DLQ events, queryTrace by msgId, and what tracing off writes.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { Tracer, type TraceSink } from '../../lib/broker/trace/tracer.js';
import {
  channels, PocketMQError, TRACE_TOPIC, type MessageExt, type PubTraceEvent, type SubTraceEvent,
  type TraceEvent, type TraceWriteMessage,
} from '../../lib/index.js';
import { ManualClock } from '../../lib/internal.js';
import { useTempDirs } from '../support/backends.js';
import { errorOf, rejection } from '../support/errors.js';
import { openStore, Recorder, startPush, until } from '../support/messaging.js';

const tmp = useTempDirs('pmq-trace-');

function pulled(tracer: Tracer, messages: MessageExt[]): void {
  tracer.consumed({ messages, group: 'g', clientId: 'c', outcome: 'PULLED', timestamp: 0,
    durationMs: 0 });
}

function subs(events: readonly TraceEvent[]): SubTraceEvent[] {
  return events.filter((e): e is SubTraceEvent => e.type === 'SUB');
}

describe('message trace', () => {
  it('records who produced and who consumed a message, queryable by msgId', async () => {
    const store = await openStore(tmp.make(), { trace: true });
    try {
      await store.createTopic('orders', { queueNums: 2 });
      const rec = new Recorder();
      await startPush(store, { group: 'cg', instanceName: 'worker-1' }, 'orders', rec.listener);
      const producer = store.createProducer({ group: 'pg', instanceName: 'front' });
      const sent = await producer.send({ topic: 'orders', tags: 'TagA', keys: ['order-1'],
        body: 'hello' });
      await until(async () => subs(await store.queryTrace(sent.msgId)).length === 1,
        'the SUB event');
      const events = await store.queryTrace(sent.msgId);
      expect(events.map((e) => e.type)).toEqual(['PUB', 'SUB']);
      const pub = events[0] as PubTraceEvent;
      expect(pub).toMatchObject({ msgId: sent.msgId, topic: 'orders', queueId: sent.queueId,
        queueOffset: sent.queueOffset, commitLogOffset: sent.commitLogOffset, tags: 'TagA',
        keys: ['order-1'], group: 'pg', clientId: 'front', pid: process.pid, status: 'SEND_OK',
        storeTimestamp: sent.storeTimestamp });
      expect(pub.costMs).toBeGreaterThanOrEqual(0);
      expect(pub.bornTimestamp).toBe(pub.timestamp);
      const sub = events[1] as SubTraceEvent;
      expect(sub).toMatchObject({ msgId: sent.msgId, group: 'cg', clientId: 'worker-1',
        topic: 'orders', queueId: sent.queueId, queueOffset: sent.queueOffset,
        reconsumeTimes: 0, result: 'CONSUME_SUCCESS', batchSize: 1 });
      expect(sub.durationMs).toBeGreaterThanOrEqual(0);
      expect(sub.timestamp).toBeGreaterThanOrEqual(pub.timestamp);
      // The id is matched whatever its case; an unknown id has no events.
      expect(await store.queryTrace(sent.msgId.toLowerCase())).toHaveLength(2);
      expect(await store.queryTrace('0'.repeat(24))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('RECONSUME_LATER then success shows two SUB events; a throw shows THROWN', async () => {
    const store = await openStore(tmp.make(), { trace: true, messageDelayLevel: '1ms' });
    try {
      await store.createTopic('t', { queueNums: 1 });
      const rec = new Recorder((msgs) => {
        const first = msgs[0]!.reconsumeTimes === 0;
        if (msgs[0]!.body.toString() === 'boom' && first) throw new Error('listener boom');
        return first ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
      });
      await startPush(store, { group: 'g', instanceName: 'i1' }, 't', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      const later = await producer.send({ topic: 't', body: 'later' });
      await until(async () => subs(await store.queryTrace(later.msgId)).length === 2,
        'two SUB events');
      const events = await store.queryTrace(later.msgId);
      expect(events.map((e) => e.type)).toEqual(['PUB', 'SUB', 'SUB']);
      expect(subs(events).map((e) => [e.result, e.reconsumeTimes])).toEqual([
        ['RECONSUME_LATER', 0], ['CONSUME_SUCCESS', 1]]);

      const boom = await producer.send({ topic: 't', body: 'boom' });
      await until(async () => subs(await store.queryTrace(boom.msgId))
        .some((e) => e.result === 'CONSUME_SUCCESS'), 'boom consumed at last');
      expect(subs(await store.queryTrace(boom.msgId)).map((e) => e.result))
        .toEqual(['THROWN', 'CONSUME_SUCCESS']);
    } finally {
      await store.close();
    }
  });

  it('traces sendOneway, sendBatch, pulls and moves to the DLQ', async () => {
    const store = await openStore(tmp.make(), { trace: true, messageDelayLevel: '1ms' });
    try {
      await store.createTopic('t', { queueNums: 1 });
      const producer = store.createProducer({ group: 'pg' });
      const batch = await producer.sendBatch([{ topic: 't', body: 'a' },
        { topic: 't', body: 'b' }]);
      producer.sendOneway({ topic: 't', body: 'c', keys: 'oneway-key' });
      const pull = store.createPullConsumer({ group: 'pullg', instanceName: 'puller',
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      pull.subscribe('t', '*');
      const pulled: MessageExt[] = [];
      await until(async () => {
        pulled.push(...await pull.poll(100));
        return pulled.length === 3;
      }, 'three messages pulled');
      await pull.shutdown();
      for (const m of pulled) {
        const events = await store.queryTrace(m.msgId);
        expect(events.map((e) => e.type)).toEqual(['PUB', 'SUB']);
        expect(events[1]).toMatchObject({ result: 'PULLED', group: 'pullg', clientId: 'puller',
          durationMs: 0, batchSize: 3 });
      }
      expect((await store.queryTrace(batch[1]!.msgId))[0]).toMatchObject({ type: 'PUB',
        queueOffset: batch[1]!.queueOffset });
      const oneway = pulled.find((m) => m.body.toString() === 'c')!;
      expect((await store.queryTrace(oneway.msgId))[0]).toMatchObject({ type: 'PUB',
        keys: ['oneway-key'] });

      const rec = new Recorder(() => 'RECONSUME_LATER');
      await startPush(store, { group: 'dg', maxReconsumeTimes: 1,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 't', rec.listener);
      const first = batch[0]!.msgId;
      await until(async () => (await store.queryTrace(first)).some((e) => e.type === 'DLQ'),
        'the DLQ event');
      const dg = (await store.queryTrace(first)).filter((e) => e.group === 'dg');
      expect(dg.map((e) => e.type)).toEqual(['SUB', 'SUB', 'DLQ']);
      expect(dg[2]).toMatchObject({ dlqTopic: '%DLQ%dg', reconsumeTimes: 1, topic: 't' });
    } finally {
      await store.close();
    }
  });

  it('writes nothing to RMQ_SYS_TRACE_TOPIC when off', async () => {
    const store = await openStore(tmp.make());
    try {
      const rec = new Recorder();
      await startPush(store, { group: 'g' }, 't', rec.listener);
      const producer = store.createProducer({ group: 'pg' });
      const sent = await producer.send({ topic: 't', body: 'x' });
      await until(() => rec.calls.length === 1, 'the message consumed');
      expect(await store.queryTrace(sent.msgId)).toEqual([]);
      expect(store.topics().map((t) => t.topic)).not.toContain(TRACE_TOPIC);
      expect(await store.maxOffset(TRACE_TOPIC, 0)).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('flushes buffered events at close: queryTrace finds them after reopening', async () => {
    const dir = tmp.make();
    let msgId = '';
    const store = await openStore(dir, { trace: true, flushDiskType: 'SYNC_FLUSH' });
    try {
      const producer = store.createProducer({ group: 'pg' });
      // Not awaited: the send waits for its flush when close begins.
      const sending = producer.send({ topic: 't', body: 'kept' });
      await store.close();
      msgId = (await sending).msgId;
    } finally {
      await store.close();
    }
    const again = await openStore(dir);
    try {
      const events = await again.queryTrace(msgId);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'PUB', msgId, topic: 't', group: 'pg' });
    } finally {
      await again.close();
    }
  });

  it('a failed trace write loses its events, counts them and warns once per run', async () => {
    const warnings: string[] = [];
    let failing = true;
    const sink = {
      clock: new ManualClock(1000), logger: { warn: (m: string) => warnings.push(m) },
      maxMessageSize: 2 ** 20,
      ensureTopic: () => Promise.resolve({}),
      put: () => failing ? Promise.reject(new PocketMQError('DISK_FULL', 'disk full'))
        : Promise.resolve({}),
    } as unknown as TraceSink;
    const writes: TraceWriteMessage[] = [];
    const onWrite = (m: unknown): void => {
      writes.push(m as TraceWriteMessage);
    };
    subscribe(channels.trace, onWrite);
    try {
      const tracer = new Tracer(sink);
      const message = { msgId: 'A'.repeat(24), topic: 't', queueId: 0, queueOffset: 0,
        reconsumeTimes: 0 } as MessageExt;
      pulled(tracer, [message, message]);
      await tracer.flush();
      pulled(tracer, [message]);
      await tracer.flush();
      expect(writes.map((w) => [w.records, w.dropped, w.droppedTotal])).toEqual([
        [0, 2, 2], [0, 1, 3]]);
      expect((writes[0]!.error as PocketMQError).code).toBe('DISK_FULL');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('2 trace events lost (writing failed: disk full)');
      failing = false;
      pulled(tracer, [message]);
      await tracer.close();
      expect(writes.at(-1)).toMatchObject({ records: 1, events: 1, dropped: 0, error: null });
      pulled(tracer, [message]); // after close: dropped, counted
      expect(tracer.droppedTotal).toBe(4);
    } finally {
      unsubscribe(channels.trace, onWrite);
    }
  });

  it('refuses bad input with coded errors', async () => {
    expect((await rejection(openStore(tmp.make(), { trace: 'yes' as never }))).code)
      .toBe('INVALID_OPTION');
    const store = await openStore(tmp.make(), { trace: true });
    try {
      expect((await rejection(store.queryTrace(42 as never))).code).toBe('INVALID_OPTION');
      expect(errorOf(() => store.createProducer({ group: 'pg', instanceName: 'a b' })).code)
        .toBe('INVALID_OPTION');
      const producer = store.createProducer({ group: 'pg' });
      expect(errorOf(() => producer.sendOneway({ topic: TRACE_TOPIC, body: 'x' })).code)
        .toBe('INVALID_TOPIC');
    } finally {
      await store.close();
    }
    expect((await rejection(store.queryTrace('x'))).code).toBe('STORE_CLOSED');
  });
});
