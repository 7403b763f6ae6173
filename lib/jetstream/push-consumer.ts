/**
 * The push consumer of a JetStreamStore: the embedded PushConsumer's API and listener semantics
 * over one durable consumer per owned queue.
 *
 * Each owned queue is read by its own loop (JetStream pulls up to `pullBatchSize` at a time and
 * holds at most `pullThresholdForQueue` unacknowledged messages per queue); messages that do not
 * pass the subscription's selector are acknowledged unseen. Listener calls run side by side, at
 * most `consumeThreadMax` at once; a listener that resolves anything but 'RECONSUME_LATER'
 * consumed its messages (acknowledged); 'RECONSUME_LATER' or a throw gives them back with a
 * delay of level `3 + reconsumeTimes` of `messageDelayLevel` (a NAK with that delay), and a
 * message given back more than `maxReconsumeTimes` times is copied to `%DLQ%<group>` and
 * acknowledged. `reconsumeTimes` is JetStream's delivery count less one. Broadcasting never
 * retries. Orderly consumers read a queue one batch after another and retry a failed batch in
 * place after `suspendCurrentQueueTimeMillis`.
 *
 * Messages in a listener's hands are kept alive (JetStream's "working" signal), so a slow
 * listener is not redelivered to another instance; those of an instance that died are, after
 * `ackWaitMs`.
 */
import type { JsMsg } from '@nats-io/jetstream';
import {
  PocketMQError, type ConsumeListener, type MessageExt, type MessageQueue, type MessageSelector,
  type PushConsumerOptions,
} from '../index.js';
import type { Connection } from './connection.js';
import { JetStreamConsumerBase, queueKey } from './consumer-base.js';
import {
  DEAD_LETTER_RETRY_MS, deliveryOf, moveToDeadLetter, QueueReader, readQueue,
  READ_RETRY_DELAY_MS, Slots, type Delivery,
} from './deliveries.js';
import { resolveConsumerOptions } from './options.js';
import { retryDelayMs } from './public-gaps.js';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class JetStreamPushConsumer extends JetStreamConsumerBase {
  private listener: ConsumeListener | null = null;
  private readonly readers = new Map<string, QueueReader>();
  /** Messages in listeners' hands: kept alive every third of `ackWaitMs`. */
  private readonly inHand = new Set<JsMsg>();
  private keptAliveMs = Date.now();
  private readonly slots: Slots;
  private stopping: Promise<void> | null = null;
  /** A ref'd timer that holds the process alive while the consumer runs. */
  private hold: NodeJS.Timeout | null = null;

  /** Use `store.createPushConsumer`. */
  constructor(connection: Connection, options: PushConsumerOptions,
    onShutdown: (consumer: JetStreamConsumerBase) => void) {
    const resolved = resolveConsumerOptions(options, 'push');
    super(connection, resolved, onShutdown);
    this.slots = new Slots(resolved.consumeThreadMax);
  }

  /**
   * The function that handles messages. Resolving (with nothing, or 'CONSUME_SUCCESS') means
   * they were consumed; resolving 'RECONSUME_LATER', throwing or rejecting asks for redelivery.
   */
  registerMessageListener(listener: ConsumeListener): void {
    this.checkState('created', 'register a listener');
    if (typeof listener !== 'function') {
      throw new PocketMQError('INVALID_OPTION', 'the listener must be a function',
        { property: 'listener' });
    }
    this.listener = listener;
  }

  /**
   * Join the group and start consuming; resolves once this instance's durable consumers exist.
   * From here until `shutdown` (or the store's `close`) the consumer keeps the process alive.
   */
  async start(): Promise<void> {
    this.checkState('created', 'start');
    if (this.listener === null) {
      throw new PocketMQError('INVALID_STATE', 'register a message listener before start');
    }
    if (this.subscriptions.size === 0) {
      throw new PocketMQError('INVALID_STATE', 'subscribe to a topic before start');
    }
    this.connection.checkOpen();
    this.state = 'running';
    this.hold = setInterval(() => undefined, 2 ** 31 - 1);
    try {
      await this.joinGroup();
    } catch (err) {
      await this.shutdown();
      throw err;
    }
  }

  /**
   * Stop reading, wait for listener calls in flight and settle their messages, leave the group.
   * Every call resolves only when all that is done.
   */
  shutdown(): Promise<void> {
    if (this.stopping !== null) return this.stopping;
    if (this.state !== 'running') {
      this.state = 'stopped';
      return Promise.resolve();
    }
    this.state = 'stopping';
    this.stopping = (async () => {
      try {
        await this.leaveGroup();
      } finally {
        this.state = 'stopped';
        if (this.hold !== null) clearInterval(this.hold);
        this.hold = null;
      }
    })();
    return this.stopping;
  }

  protected addQueue(mq: MessageQueue, durable: string): void {
    const reader = new QueueReader(mq, durable);
    this.readers.set(queueKey(mq), reader);
    reader.loop = this.keepReading(reader, this.selectorOf(mq.topic));
  }

  protected async removeQueue(mq: MessageQueue): Promise<void> {
    const reader = this.readers.get(queueKey(mq));
    if (reader === undefined) return;
    reader.drop();
    try {
      await reader.loop;
      await reader.settled();
    } finally {
      this.readers.delete(queueKey(mq));
      reader.returnAll();
    }
  }

  protected override onTick(): void {
    const now = Date.now();
    if (now - this.keptAliveMs < this.connection.options.ackWaitMs / 3) return;
    this.keptAliveMs = now;
    for (const jm of this.inHand) jm.working();
  }

  /**
   * Read a queue until it is dropped; a loop that failed starts again after a pause. A batch
   * goes to the listener when it is full, or at the end of the turn in which its first message
   * came (messages already received join it first); batches go out one after another, so an
   * orderly queue keeps its order and a full batch waits for a free listener slot.
   */
  private async keepReading(reader: QueueReader, selector: MessageSelector): Promise<void> {
    const max = this.options.consumeMessageBatchMaxSize;
    let batch: Delivery[] = [];
    let due: NodeJS.Immediate | null = null;
    let sending: Promise<void> = Promise.resolve();
    const send = (): Promise<void> => {
      if (due !== null) clearImmediate(due);
      due = null;
      const ready = batch;
      batch = [];
      sending = sending.then(() => this.submit(reader, ready))
        .catch((err: unknown) => this.reportError('consume', err, ready.map((d) => d.ext)));
      return sending;
    };
    while (!reader.dropped && !this.connection.isClosed) {
      try {
        await readQueue(this.connection, reader, this.options.pullBatchSize, (jm) => {
          const delivery = deliveryOf(jm, selector);
          if (delivery === null) return;
          batch.push(delivery);
          if (batch.length >= max) return send();
          due ??= setImmediate(() => void send());
        });
      } catch (err) {
        if (reader.dropped) break;
        this.reportError(`read ${reader.mq.topic}/${reader.mq.queueId} (again in ` +
          `${READ_RETRY_DELAY_MS} ms)`, err);
        await sleep(READ_RETRY_DELAY_MS);
      }
    }
    if (due !== null) clearImmediate(due);
    await sending;
    reader.giveBack(batch.map((d) => d.jm));
  }

  /** Hand a batch to the listener once a slot is free; orderly waits for it to settle. */
  private async submit(reader: QueueReader, batch: Delivery[]): Promise<void> {
    const waiting = this.slots.acquire();
    if (waiting !== null) await waiting;
    if (reader.dropped) {
      this.slots.release();
      reader.giveBack(batch.map((d) => d.jm));
      return;
    }
    reader.inHand += batch.length;
    for (const d of batch) this.inHand.add(d.jm);
    const done = (this.options.orderly ? this.consumeOrderly(reader, batch)
      : this.consumeConcurrently(reader, batch))
      .catch((err: unknown) => this.reportError('settle messages', err))
      .finally(() => {
        this.slots.release();
        reader.inHand -= batch.length;
        for (const d of batch) this.inHand.delete(d.jm);
        reader.notify();
      });
    if (this.options.orderly) await done;
  }

  private async consumeConcurrently(reader: QueueReader, batch: Delivery[]): Promise<void> {
    const messages = batch.map((d) => d.ext);
    if (await this.call(reader.mq, messages) ||
      this.options.messageModel === 'BROADCASTING') {
      for (const d of batch) d.jm.ack();
      return;
    }
    await Promise.all(batch.map(async (d) => {
      if (d.ext.reconsumeTimes < this.options.maxReconsumeTimes) {
        d.jm.nak(retryDelayMs(this.connection.options.delayLevelsMs, d.ext.reconsumeTimes));
      } else if (await this.deadLetter(d.ext)) {
        d.jm.ack();
      } else {
        d.jm.nak(DEAD_LETTER_RETRY_MS);
      }
    }));
  }

  /** One batch in place until it succeeds, goes to the DLQ, or the queue moves away. */
  private async consumeOrderly(reader: QueueReader, batch: Delivery[]): Promise<void> {
    let messages = batch.map((d) => d.ext);
    for (;;) {
      if (await this.call(reader.mq, messages)) break;
      if (messages.every((m) => m.reconsumeTimes >= this.options.maxReconsumeTimes)) {
        // A failed move holds the queue and is tried again, without calling the listener.
        for (const m of messages) {
          while (!await this.deadLetter(m)) {
            if (reader.dropped) return reader.giveBack(batch.map((d) => d.jm));
            await sleep(DEAD_LETTER_RETRY_MS);
          }
        }
        break;
      }
      await sleep(this.options.suspendCurrentQueueTimeMillis);
      if (reader.dropped) return reader.giveBack(batch.map((d) => d.jm));
      messages = messages.map((m) => ({ ...m, reconsumeTimes: m.reconsumeTimes + 1 }));
    }
    for (const d of batch) d.jm.ack();
  }

  /** Resolves true when the listener consumed `messages`; errors go to the application. */
  private async call(mq: MessageQueue, messages: MessageExt[]): Promise<boolean> {
    try {
      const answer: unknown = await this.listener!(messages,
        { messageQueue: mq, group: this.options.group, orderly: this.options.orderly });
      return answer !== 'RECONSUME_LATER';
    } catch (err) {
      this.reportError('listener', err, messages);
      return false;
    }
  }

  /** Copy to the DLQ; false (and the error reported) when it failed. */
  private async deadLetter(message: MessageExt): Promise<boolean> {
    try {
      await moveToDeadLetter(this.connection, this.options.group, message);
      return true;
    } catch (err) {
      this.reportError(`move ${message.msgId} to the dead-letter queue (again in ` +
        `${DEAD_LETTER_RETRY_MS} ms)`, err, [message]);
      return false;
    }
  }
}
