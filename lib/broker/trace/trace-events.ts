/**
 * The events of the message trace (docs/observability.md): PUB for a stored message, SUB for a
 * listener call or a poll that handed it out, DLQ for a move to the dead-letter queue.
 */
import type { SendStatus } from '../message.js';

/** The system topic trace records go to (reserved prefix RMQ_SYS_: users cannot send to it). */
export const TRACE_TOPIC = 'RMQ_SYS_TRACE_TOPIC';

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

/**
 * How a listener call ended (THROWN: it threw or rejected), or PULLED: a pull consumer's poll
 * handed the message out.
 */
export type SubTraceResult = 'CONSUME_SUCCESS' | 'RECONSUME_LATER' | 'THROWN' | 'PULLED';

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

