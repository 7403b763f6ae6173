/**
 * Messages as JetStream consumers hand them over: each delivered JetStream message with its
 * pocketmq view, the queue readers that pull them from a durable consumer, the bound on listener
 * calls in flight, and the move of a message that ran out of retries to `%DLQ%<group>`.
 */
import type { ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import { limits, type MessageExt, type MessageQueue, type MessageSelector } from '../index.js';
import { outgoingOf, streamOf, toMessageExt, topicOf } from './codec.js';
import type { Connection } from './connection.js';
import { publishMessage } from './publish.js';
import { DLQ_PREFIX } from './public-gaps.js';

/** One delivered message: the JetStream message (to acknowledge) and what the application sees. */
export interface Delivery {
  readonly jm: JsMsg;
  readonly ext: MessageExt;
}

/** How long a read loop that failed waits before it starts again (the embedded store's). */
export const READ_RETRY_DELAY_MS = limits.fetchRetryDelayMs;
/** How long a failed move to the dead-letter queue waits before it is tried again. */
export const DEAD_LETTER_RETRY_MS = limits.deadLetterRetryMs;

/** A delivery, or null when it does not pass `selector` (then it is acknowledged at once). */
export function deliveryOf(jm: JsMsg, selector: MessageSelector): Delivery | null {
  const ext = toMessageExt({ subject: jm.subject, topic: topicOf(jm.info.stream),
    sequence: jm.seq, headers: jm.headers, data: jm.data,
    storeTimestamp: Math.floor(jm.info.timestampNanos / 1e6),
    redeliveries: Math.max(0, jm.info.deliveryCount - 1) });
  if (selector.matches(ext.tags, ext.properties)) return { jm, ext };
  jm.ack();
  return null;
}

/** One owned queue: its durable consumer's message stream while it is read. */
export class QueueReader {
  messages: ConsumerMessages | null = null;
  dropped = false;
  /** Deliveries handed to the application and not settled yet. */
  inHand = 0;
  loop: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];
  /** Messages to give back when the queue is let go, or null once they went back. */
  private returning: JsMsg[] | null = [];
  /** Messages that arrived after the queue was dropped (given back first). */
  private leftovers: JsMsg[] = [];

  constructor(readonly mq: MessageQueue, readonly durable: string) {}

  /** Stop reading: the deliveries still buffered come out of the loop and are given back. */
  drop(): void {
    this.dropped = true;
    void this.messages?.close();
    this.notify();
  }

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves at the next `notify` (a settled delivery, a drop). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * Give messages back to the group (delivered again at once, to whichever instance reads the
   * queue next). While the queue is being let go they are collected and go back together:
   * those that arrived after the drop first, then the others in stream order. (NATS 2.9
   * redelivers in the order of the NAKs; given back the other way round, the message received
   * last is sometimes delivered twice and the first one given back only after `ackWaitMs`.)
   */
  giveBack(messages: readonly JsMsg[], leftover = false): void {
    if (this.returning === null) {
      for (const jm of messages) jm.nak();
    } else {
      (leftover ? this.leftovers : this.returning).push(...messages);
    }
  }

  /** The queue is let go: give back what was collected. */
  returnAll(): void {
    const returning = (this.returning ?? []).sort((a, b) => a.seq - b.seq);
    this.returning = null;
    for (const jm of [...this.leftovers, ...returning]) jm.nak();
    this.leftovers = [];
  }

  /** Resolves once nothing of this queue is in the application's hands. */
  async settled(): Promise<void> {
    while (this.inHand > 0) await this.changed();
  }
}

/** Open the durable consumer of `reader` and hand each message to `each` until dropped. */
export async function readQueue(connection: Connection, reader: QueueReader, batch: number,
  each: (jm: JsMsg) => void | Promise<void>): Promise<void> {
  const consumer = await connection.retrying(`open consumer ${reader.durable}`,
    () => connection.js.consumers.get(streamOf(reader.mq.topic), reader.durable), reader.mq.topic);
  if (reader.dropped) return;
  // Pull requests expire after five heartbeat intervals (at least 1 s; NATS's default is 30 s):
  // after a server died, requests it held are replaced within that time, not half a minute.
  const expires = Math.min(30_000, Math.max(1000, 5 * connection.options.heartbeatIntervalMs));
  const messages = await consumer.consume({ max_messages: batch, expires,
    idle_heartbeat: expires / 2 });
  reader.messages = messages;
  if (reader.dropped) void messages.close();
  for await (const jm of messages) {
    if (reader.dropped) {
      reader.giveBack([jm], true);
      continue;
    }
    const step = each(jm);
    if (step !== undefined) await step;
  }
}

/** At most `max` listener calls at once (`consumeThreadMax`). */
export class Slots {
  private waiters: (() => void)[] = [];

  constructor(private free: number) {}

  /** null when a slot was free (taken now), else a promise of one. */
  acquire(): Promise<void> | null {
    if (this.free > 0) {
      this.free--;
      return null;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next !== undefined) next();
    else this.free++;
  }
}

/** Copy a message that ran out of retries to `%DLQ%<group>` (one queue), keeping its id. */
export async function moveToDeadLetter(connection: Connection, group: string,
  message: MessageExt): Promise<void> {
  const topic = DLQ_PREFIX + group;
  await connection.topicForSend(topic, 1);
  await publishMessage(connection, { message: { ...outgoingOf(message), topic }, queueId: 0,
    natsMsgId: `${message.msgId}>${group}`, bornMs: message.bornTimestamp, retry: true,
    origin: { msgId: message.msgId, topic: message.topic,
      reconsumeTimes: message.reconsumeTimes } });
}
