/**
 * Message trace (RocketMQ's message trace, opt-in with the store option `trace`): who produced a
 * message and when it was stored, which consumer instance handled it, with what result and how
 * long it took, queryable by msgId.
 *
 * The broker hands events to the Tracer: PUB when it stores a sent message, SUB when a client
 * reports a listener call or a poll (`BrokerPort.reportConsumed`), DLQ when it moves a message to
 * a dead-letter queue. The Tracer buffers them in memory (at most `limits.traceBufferEvents`;
 * beyond that events are dropped and counted) and appends them once per event-loop turn as
 * records of the system topic `RMQ_SYS_TRACE_TOPIC` (one queue): a record's body is a JSON array
 * of at most `limits.traceRecordEvents` events, and its keys are the msgIds those events are
 * about, so the store's IndexFile finds a message's records by msgId. A trace write that fails
 * (DISK_FULL, a stopped store) loses its events and counts them; it never fails a send or a
 * listener. Each write publishes on `pocketmq:trace` (lib/channels.ts).
 */
import { channel } from 'node:diagnostics_channel';
import { channels, type TraceWriteMessage } from '../../channels.js';
import { limits } from '../../limits.js';
import type { Clock } from '../../store/clock.js';
import type { Logger } from '../../store/options.js';
import type { RecordInput } from '../../store/record-codec.js';
import type { MessageExt } from '../message.js';
import { dlqTopic } from '../names.js';
import type { ConsumeReport, ProducerRef, SendResult } from '../port.js';
import { TRACE_TOPIC, type TraceEvent } from './trace-events.js';
import { monotonicMs } from '../../builtins.js';

const traceChannel = channel(channels.trace);

/** Where trace records go: the broker's clock, logger, and appends to the trace topic. */
export interface TraceSink {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly maxMessageSize: number;
  /** Create the trace topic (once; a failure is tried again at the next write). */
  ensureTopic(): Promise<unknown>;
  put(input: RecordInput): Promise<unknown>;
}

/** What a send captured before it started (see Tracer.start). */
export interface SendTimer {
  readonly bornTimestamp: number;
  readonly startedMs: number;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
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

  constructor(private readonly sink: TraceSink) {}

  /** Events lost since the store opened (buffer full, a record too large, a failed write). */
  get droppedTotal(): number {
    return this.droppedTotalCount;
  }

  /** Before a send: the time it starts. */
  start(): SendTimer {
    return { bornTimestamp: this.sink.clock.now(), startedMs: monotonicMs() };
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

  /** A send stored `message` with receipt `r`. */
  published(producer: ProducerRef, timer: SendTimer,
    message: { readonly tags: string | undefined; readonly keys: readonly string[] | undefined },
    r: SendResult): void {
    this.record({ type: 'PUB', msgId: r.msgId, topic: r.topic, queueId: r.queueId,
      queueOffset: r.queueOffset, commitLogOffset: r.commitLogOffset, group: producer.group,
      clientId: producer.instanceName, pid: process.pid, timestamp: timer.bornTimestamp,
      tags: message.tags, keys: message.keys ?? [], bornTimestamp: timer.bornTimestamp,
      storeTimestamp: r.storeTimestamp, costMs: round(monotonicMs() - timer.startedMs),
      status: r.status });
  }

  /** A listener call or a poll, as a client reported it: one SUB event per message. */
  consumed(report: ConsumeReport): void {
    const { messages, group, clientId, outcome, timestamp } = report;
    const durationMs = round(report.durationMs);
    for (const m of messages) {
      this.record({ type: 'SUB', msgId: m.msgId, topic: m.topic, queueId: m.queueId,
        queueOffset: m.queueOffset, group, clientId, pid: process.pid, timestamp,
        reconsumeTimes: m.reconsumeTimes, result: outcome, durationMs,
        batchSize: messages.length });
    }
  }

  /** The broker moved a message to its group's dead-letter queue. */
  deadLettered(message: MessageExt, group: string, clientId: string): void {
    this.record({ type: 'DLQ', msgId: message.msgId, topic: message.topic,
      queueId: message.queueId, queueOffset: message.queueOffset, group, clientId,
      pid: process.pid, timestamp: this.sink.clock.now(),
      reconsumeTimes: message.reconsumeTimes, dlqTopic: dlqTopic(group) });
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
      this.topicReady ??= this.sink.ensureTopic();
      await this.topicReady.catch((err: unknown) => {
        this.topicReady = null;
        throw err;
      });
      const packed = this.pack(events);
      const results = await Promise.allSettled(packed.map((p) => this.sink.put(p.input)));
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
      this.sink.logger.warn(`pocketmq: ${dropped} trace events lost (${why}); ` +
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
    const maxBytes = Math.min(limits.traceRecordBytes, this.sink.maxMessageSize);
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

