/**
 * Message trace (RocketMQ's message trace, opt-in with the store option `trace`): who produced a
 * message and when it was stored, which consumer instance handled it, with what result and how
 * long it took, queryable by msgId.
 *
 * Producers and consumers hand events to the Tracer, which buffers them in memory (at most
 * `limits.traceBufferEvents`; beyond that events are dropped and counted) and appends them once
 * per event-loop turn as records of the system topic `RMQ_SYS_TRACE_TOPIC` (one queue): a
 * record's body is a JSON array of at most `limits.traceRecordEvents` events, and its keys are
 * the msgIds those events are about, so the store's IndexFile finds a message's records by msgId.
 * A trace write that fails (DISK_FULL, a stopped store) loses its events and counts them; it
 * never fails a send or a listener. Each write publishes on `pocketmq:trace` (lib/channels.ts).
 */
import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { channels, type TraceWriteMessage } from '../channels.js';
import { CorruptDataError, PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { Broker } from '../broker/broker.js';
import type { Message, MessageExt } from '../broker/message.js';
import { dlqTopic } from '../broker/names.js';
import type { RecordInput } from '../store/record-codec.js';
import type { ConsumeListener, ConsumeResult } from './consume-service.js';
import type { SendResult, SendStatus } from './producer.js';

/** The system topic trace records go to (reserved prefix RMQ_SYS_: users cannot send to it). */
export const TRACE_TOPIC = 'RMQ_SYS_TRACE_TOPIC';

const traceChannel = channel(channels.trace);

/** What every trace event says. */
interface TraceEventBase {
  readonly msgId: string;
  readonly topic: string;
  readonly queueId: number;
  readonly queueOffset: number;
  /** Producer or consumer group. */
  readonly group: string;
  /** The producer's or consumer's instance (a consumer's is unique in its group). */
  readonly clientId: string;
  /** The process that recorded the event. */
  readonly pid: number;
  /** When it happened, ms since the epoch (the store's clock): events sort by it. */
  readonly timestamp: number;
}

/** A message stored by send, sendOneway or sendBatch. */
export interface PubTraceEvent extends TraceEventBase {
  readonly type: 'PUB';
  readonly commitLogOffset: number;
  readonly tags?: string | undefined;
  readonly keys: readonly string[];
  /** When send was called (equal to `timestamp`). */
  readonly bornTimestamp: number;
  readonly storeTimestamp: number;
  /** From the call to the stored result (with SYNC_FLUSH: to the flush). */
  readonly costMs: number;
  readonly status: SendStatus;
}

/** THROWN: the listener threw or rejected; PULLED: a pull consumer's poll handed it out. */
export type SubTraceResult = ConsumeResult | 'THROWN' | 'PULLED';

/** A message handed to a push consumer's listener (once per call) or out of a poll. */
export interface SubTraceEvent extends TraceEventBase {
  readonly type: 'SUB';
  readonly reconsumeTimes: number;
  readonly result: SubTraceResult;
  /** The listener call's duration (0 for PULLED); `timestamp` is when it started. */
  readonly durationMs: number;
  /** Messages in the listener call (or poll) that handled this one. */
  readonly batchSize: number;
}

/** A message given up after its last retry and moved to `%DLQ%<group>`. */
export interface DlqTraceEvent extends TraceEventBase {
  readonly type: 'DLQ';
  readonly reconsumeTimes: number;
  readonly dlqTopic: string;
}

export type TraceEvent = PubTraceEvent | SubTraceEvent | DlqTraceEvent;
export type TraceEventType = TraceEvent['type'];

/** What a send captured before it started (see Tracer.start). */
export interface SendTimer {
  readonly bornTimestamp: number;
  readonly startedMs: number;
  readonly tags: string | undefined;
  readonly keys: readonly string[];
}

/** The producer side of an event. */
export interface TraceProducer {
  readonly group: string;
  readonly instanceName: string;
}

const ORDER: Readonly<Record<TraceEventType, number>> = { PUB: 0, SUB: 1, DLQ: 2 };

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Keys as a message gave them (string or array), checked loosely: the send validates them. */
function keysOf(keys: unknown): string[] {
  if (typeof keys === 'string') return [keys];
  if (!Array.isArray(keys)) return [];
  return keys.filter((k): k is string => typeof k === 'string');
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function';
}

/** One trace record to write: the events it holds and its input. */
interface Packed {
  readonly events: number;
  readonly input: RecordInput;
}

export class Tracer {
  private buffer: TraceEvent[] = [];
  private writing: Promise<void> | null = null;
  private scheduled = false;
  private closed = false;
  private topicReady: Promise<unknown> | null = null;
  /** Events lost since the last report, and since the store opened. */
  private droppedSince = 0;
  private droppedTotalCount = 0;
  /** A loss was logged and no write has succeeded since: do not log every turn. */
  private losing = false;
  /** Events taken into the buffer, and of those the ones written or lost (in order). */
  private recorded = 0;
  private settled = 0;
  /** Traced sends not yet settled: close waits for their PUB events. */
  private sending = 0;
  private sendsSettled: (() => void) | null = null;

  constructor(private readonly broker: Broker) {}

  /** Events lost since the store opened (buffer full, a record too large, a failed write). */
  get droppedTotal(): number {
    return this.droppedTotalCount;
  }

  /** Before a send: the time it starts and the message's tags and keys. Never throws. */
  start(message: unknown): SendTimer {
    const m: Partial<Message> = message !== null && typeof message === 'object' ? message : {};
    const tags = typeof m.tags === 'string' && m.tags !== '' ? m.tags : undefined;
    return { bornTimestamp: this.broker.options.clock.now(), startedMs: performance.now(), tags,
      keys: keysOf(m.keys) };
  }

  /**
   * A traced send: `record` turns its outcome into PUB events. Close waits for sends in
   * flight, so their events are written before the log closes.
   */
  traceSend<T>(send: Promise<T>, record: (value: T) => void): Promise<T> {
    this.sending++;
    return send.then((value) => {
      this.sendDone();
      record(value);
      return value;
    }, (err: unknown) => {
      this.sendDone();
      throw err;
    });
  }

  private sendDone(): void {
    if (--this.sending === 0 && this.sendsSettled !== null) this.sendsSettled();
  }

  /** A send stored its message. */
  published(producer: TraceProducer, timer: SendTimer, r: SendResult): void {
    this.record({ type: 'PUB', msgId: r.msgId, topic: r.topic, queueId: r.queueId,
      queueOffset: r.queueOffset, commitLogOffset: r.commitLogOffset, group: producer.group,
      clientId: producer.instanceName, pid: process.pid, timestamp: timer.bornTimestamp,
      tags: timer.tags, keys: timer.keys, bornTimestamp: timer.bornTimestamp,
      storeTimestamp: r.storeTimestamp, costMs: round(performance.now() - timer.startedMs),
      status: r.status });
  }

  /**
   * The listener, recording one SUB event per message of each call once its result is known.
   * A synchronous listener stays synchronous; a throw or rejection passes through unchanged.
   */
  wrapListener(listener: ConsumeListener, group: string,
    clientId: () => string): ConsumeListener {
    return (messages, context) => {
      const timestamp = this.broker.options.clock.now();
      const started = performance.now();
      const done = (result: SubTraceResult): void => this.consumed(messages, group, clientId(),
        result, timestamp, round(performance.now() - started));
      let answer: ReturnType<ConsumeListener>;
      try {
        answer = listener(messages, context);
      } catch (err) {
        done('THROWN');
        throw err;
      }
      if (!isThenable(answer)) {
        done(answer === 'CONSUME_SUCCESS' ? answer : 'RECONSUME_LATER');
        return answer;
      }
      return Promise.resolve(answer).then((value) => {
        done(value === 'CONSUME_SUCCESS' ? value : 'RECONSUME_LATER');
        return value;
      }, (err: unknown) => {
        done('THROWN');
        throw err;
      });
    };
  }

  /** A pull consumer's poll handed these messages out. */
  pulled(messages: readonly MessageExt[], group: string, clientId: string): void {
    this.consumed(messages, group, clientId, 'PULLED', this.broker.options.clock.now(), 0);
  }

  /** A consumer moved a message to its group's dead-letter queue. */
  deadLettered(message: MessageExt, group: string, clientId: string): void {
    this.record({ type: 'DLQ', msgId: message.msgId, topic: message.topic,
      queueId: message.queueId, queueOffset: message.queueOffset, group, clientId,
      pid: process.pid, timestamp: this.broker.options.clock.now(),
      reconsumeTimes: message.reconsumeTimes, dlqTopic: dlqTopic(group) });
  }

  private consumed(messages: readonly MessageExt[], group: string, clientId: string,
    result: SubTraceResult, timestamp: number, durationMs: number): void {
    for (const m of messages) {
      this.record({ type: 'SUB', msgId: m.msgId, topic: m.topic, queueId: m.queueId,
        queueOffset: m.queueOffset, group, clientId, pid: process.pid, timestamp,
        reconsumeTimes: m.reconsumeTimes, result, durationMs, batchSize: messages.length });
    }
  }

  /** Buffer one event; a full buffer (or a closed tracer) drops it and counts it. */
  private record(event: TraceEvent): void {
    if (this.closed || this.buffer.length >= limits.traceBufferEvents) {
      this.droppedSince++;
      this.droppedTotalCount++;
      return;
    }
    this.buffer.push(event);
    this.recorded++;
    if (this.writing === null) this.schedule();
  }

  /** Write the buffer at the end of this event-loop turn: one write for the turn's events. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.writeBuffered();
    });
  }

  /**
   * Resolves once every event recorded before the call is written (or counted as lost); events
   * that keep arriving meanwhile do not hold it up.
   */
  async flush(): Promise<void> {
    const target = this.recorded;
    while (this.settled < target) {
      this.writeBuffered();
      if (this.writing === null) return;
      await this.writing;
    }
  }

  /** Wait for traced sends in flight, write what is buffered, take no more. Never rejects. */
  async close(): Promise<void> {
    if (this.sending > 0) {
      await new Promise<void>((resolve) => {
        this.sendsSettled = resolve;
      });
    }
    await this.flush();
    this.closed = true;
  }

  private writeBuffered(): void {
    if (this.writing !== null || this.buffer.length === 0) return;
    const events = this.buffer;
    this.buffer = [];
    this.writing = this.write(events).finally(() => {
      this.writing = null;
      if (this.buffer.length > 0) this.schedule();
    });
  }

  /** Append `events` as trace records. Never rejects: what fails is counted as dropped. */
  private async write(events: readonly TraceEvent[]): Promise<void> {
    let records = 0;
    let written = 0;
    let error: unknown = null;
    try {
      this.topicReady ??= this.broker.systemTopic(TRACE_TOPIC, 1);
      await this.topicReady.catch((err: unknown) => {
        this.topicReady = null;
        throw err;
      });
      const packed = this.pack(events);
      const results = await Promise.allSettled(packed.map((p) => this.broker.put(p.input)));
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') {
          records++;
          written += packed[i]!.events;
        } else {
          error ??= r.reason;
        }
      });
    } catch (err) {
      error = err;
    }
    this.settled += events.length;
    this.report(events.length, records, written, error);
  }

  private report(total: number, records: number, written: number, error: unknown): void {
    const lost = total - written;
    this.droppedSince += lost;
    this.droppedTotalCount += lost;
    const dropped = this.droppedSince;
    this.droppedSince = 0;
    if (dropped > 0 && !this.losing) {
      this.losing = true;
      const why = error === null ? 'the trace buffer was full'
        : `writing failed: ${error instanceof Error ? error.message : String(error)}`;
      this.broker.options.logger.warn(`pocketmq: ${dropped} trace events lost (${why}); ` +
        'later losses are counted on the pocketmq:trace channel');
    } else if (dropped === 0) {
      this.losing = false;
    }
    if (traceChannel.hasSubscribers) {
      const message: TraceWriteMessage = { records, events: written, dropped,
        droppedTotal: this.droppedTotalCount, error };
      traceChannel.publish(message);
    }
  }

  /** Split events into records within the event, byte and key limits. */
  private pack(events: readonly TraceEvent[]): Packed[] {
    const maxBytes = Math.min(limits.traceRecordBytes,
      this.broker.engine.options.maxMessageSize);
    const out: Packed[] = [];
    let parts: string[] = [];
    let ids = new Set<string>();
    let bytes = 2;
    const seal = (): void => {
      if (parts.length === 0) return;
      out.push({ events: parts.length, input: { topic: TRACE_TOPIC, queueId: 0,
        body: Buffer.from(`[${parts.join(',')}]`, 'utf8'), keys: [...ids] } });
      parts = [];
      ids = new Set();
      bytes = 2;
    };
    for (const event of events) {
      const json = JSON.stringify(event);
      const size = Buffer.byteLength(json, 'utf8') + 1;
      if (size + 2 > maxBytes) continue; // cannot fit any record: lost, and counted as such
      if (bytes + size > maxBytes || parts.length >= limits.traceRecordEvents) seal();
      parts.push(json);
      ids.add(event.msgId);
      bytes += size;
    }
    seal();
    return out;
  }
}

/**
 * The trace events of `msgId`, oldest first: found by key in RMQ_SYS_TRACE_TOPIC (at most
 * `limits.traceQueryRecords` records, newest first), keeping the events about that message.
 */
export function queryTrace(broker: Broker, msgId: string): TraceEvent[] {
  if (typeof msgId !== 'string') {
    throw new PocketMQError('INVALID_OPTION', 'queryTrace takes a msgId string',
      { property: 'msgId' });
  }
  const id = msgId.toUpperCase();
  if (id === '' || /\s/.test(id)) return [];
  const records = broker.queryMessage(TRACE_TOPIC, id, limits.traceQueryRecords, 0,
    Number.MAX_SAFE_INTEGER);
  const events: TraceEvent[] = [];
  for (const record of records) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(record.body.toString('utf8'));
    } catch (err) {
      throw new CorruptDataError(`trace record at ${record.commitLogOffset} is not JSON`,
        { cause: err, offset: record.commitLogOffset, topic: TRACE_TOPIC });
    }
    if (!Array.isArray(parsed)) continue;
    for (const event of parsed as TraceEvent[]) {
      if (event !== null && typeof event === 'object' && event.msgId === id) events.push(event);
    }
  }
  return events.sort((a, b) => a.timestamp - b.timestamp || ORDER[a.type] - ORDER[b.type] ||
    reconsumeOf(a) - reconsumeOf(b));
}

function reconsumeOf(event: TraceEvent): number {
  return event.type === 'PUB' ? -1 : event.reconsumeTimes;
}
