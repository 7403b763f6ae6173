/**
 * The pull consumer of a JetStreamStore: the embedded PullConsumer's `poll(timeoutMs)`,
 * `for await`, `commit` and `autoCommit`, over one durable consumer per owned queue.
 *
 * Each owned queue's durable consumer feeds a local buffer (at most `pullBatchSize` messages
 * per queue read ahead); `poll` takes up to `pullBatchSize` of them, taking turns between
 * queues, or waits up to `timeoutMs` for the first. Committing acknowledges what polls handed
 * out: `commit()` waits until the servers confirmed it; with `autoCommit` what a poll returned
 * is acknowledged at the next poll and at shutdown. What is not committed is delivered again
 * (to this group) once the instance is gone; messages read ahead and never handed out are given
 * back at once when a queue moves away or the consumer shuts down.
 *
 * JetStream keeps a group's position itself, so the embedded consumer's offset controls
 * (`seek`, `seekToBegin`, `seekToEnd`, `position`, `committed`) throw NOT_SUPPORTED.
 */
import type { JsMsg } from '@nats-io/jetstream';
import {
  PocketMQError, type MessageExt, type MessageQueue, type PullConsumerOptions,
} from '../index.js';
import type { Connection } from './connection.js';
import { JetStreamConsumerBase, queueKey } from './consumer-base.js';
import {
  deliveryOf, QueueReader, readQueue, READ_RETRY_DELAY_MS, type Delivery,
} from './deliveries.js';
import { resolveConsumerOptions } from './options.js';

interface Buffered {
  readonly reader: QueueReader;
  readonly items: Delivery[];
}

function notOnJetStream(what: string): PocketMQError {
  return new PocketMQError('NOT_SUPPORTED', `${what} is not supported on JetStream: the ` +
    "group's position is the durable consumer's, moved by acknowledging messages");
}

export class JetStreamPullConsumer extends JetStreamConsumerBase
  implements AsyncIterable<MessageExt> {
  private readonly buffers = new Map<string, Buffered>();
  /** Handed out by polls, not yet committed. */
  private handedOut: Delivery[] = [];
  private readonly paused = new Set<string>();
  private nextQueue = 0;
  private wakers = new Set<() => void>();
  private stopping: Promise<void> | null = null;
  private keptAliveMs = Date.now();

  /** Use `store.createPullConsumer`. */
  constructor(connection: Connection, options: PullConsumerOptions,
    onShutdown: (consumer: JetStreamConsumerBase) => void) {
    super(connection, resolveConsumerOptions(options, 'pull'), onShutdown);
  }

  /** Join the group and take this instance's queues; `poll` calls it when needed. */
  async start(): Promise<void> {
    if (this.state === 'running') return;
    this.checkState('created', 'start');
    if (this.subscriptions.size === 0) {
      throw new PocketMQError('INVALID_STATE', 'subscribe to a topic before start');
    }
    this.connection.checkOpen();
    this.state = 'running';
    try {
      await this.joinGroup();
    } catch (err) {
      await this.shutdown();
      throw err;
    }
  }

  /**
   * Up to `pullBatchSize` messages from the owned queues, waiting up to `timeoutMs` for the
   * first. Resolves [] on timeout or after shutdown.
   */
  async poll(timeoutMs = 5000): Promise<MessageExt[]> {
    if (this.state === 'created') await this.start();
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0) {
      throw new PocketMQError('INVALID_OPTION', 'poll timeoutMs must be an integer >= 0',
        { property: 'timeoutMs' });
    }
    if (this.options.autoCommit) this.acknowledgeNow();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.state !== 'running') return [];
      const taken = this.take();
      if (taken.length > 0) {
        this.handedOut.push(...taken);
        return taken.map((d) => d.ext);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return [];
      await this.waitForMessages(remaining);
      // Messages that came in one network read reach the buffer over a few turns: a poll
      // woken by the first takes the others that arrived with it too.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Acknowledge what polls handed out; resolves when the servers confirmed it. */
  async commit(): Promise<void> {
    await this.acknowledgeConfirmed();
  }

  pause(queues: readonly MessageQueue[]): void {
    for (const mq of queues) this.paused.add(queueKey(mq));
  }

  resume(queues: readonly MessageQueue[]): void {
    for (const mq of queues) this.paused.delete(queueKey(mq));
    this.wake();
  }

  seek(_mq: MessageQueue, _offset: number): void {
    throw notOnJetStream('seek');
  }

  seekToBegin(_mq: MessageQueue): void {
    throw notOnJetStream('seekToBegin');
  }

  seekToEnd(_mq: MessageQueue): void {
    throw notOnJetStream('seekToEnd');
  }

  position(_mq: MessageQueue): number {
    throw notOnJetStream('position');
  }

  committed(_mq: MessageQueue): number {
    throw notOnJetStream('committed');
  }

  /**
   * Messages one by one until shutdown. Leaving the loop early (`break`, a throw) gives the
   * messages of the last poll not yet handed out back, so they are delivered again.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<MessageExt> {
    let batch: MessageExt[] = [];
    let next = 0;
    try {
      while (this.state === 'created' || this.state === 'running') {
        batch = await this.poll(1000);
        for (next = 0; next < batch.length;) yield batch[next++]!;
      }
    } finally {
      this.giveBackUnread(batch.slice(next));
    }
  }

  /** Commit (with autoCommit), give back what was read ahead, leave the group. Idempotent. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      const wasRunning = this.state === 'running';
      this.state = 'stopping';
      this.wake();
      try {
        if (wasRunning && this.options.autoCommit) await this.acknowledgeConfirmed();
      } finally {
        try {
          await this.leaveGroup();
        } finally {
          this.state = 'stopped';
        }
      }
    })();
    return this.stopping;
  }

  protected addQueue(mq: MessageQueue, durable: string): void {
    const reader = new QueueReader(mq, durable);
    const buffered: Buffered = { reader, items: [] };
    this.buffers.set(queueKey(mq), buffered);
    reader.loop = this.keepReading(buffered);
  }

  protected async removeQueue(mq: MessageQueue): Promise<void> {
    const buffered = this.buffers.get(queueKey(mq));
    if (buffered === undefined) return;
    buffered.reader.drop();
    try {
      await buffered.reader.loop;
    } finally {
      this.buffers.delete(queueKey(mq));
      const { reader } = buffered;
      reader.giveBack(buffered.items.splice(0).map((d) => d.jm));
      // Handed out and not committed: with autoCommit they count as consumed.
      const key = queueKey(mq);
      const mine = this.handedOut.filter((d) => queueKey(d.ext) === key);
      this.handedOut = this.handedOut.filter((d) => queueKey(d.ext) !== key);
      if (this.options.autoCommit) for (const d of mine) d.jm.ack();
      else reader.giveBack(mine.map((d) => d.jm));
      reader.returnAll();
    }
  }

  protected override onTick(): void {
    const now = Date.now();
    if (now - this.keptAliveMs < this.connection.options.ackWaitMs / 3) return;
    this.keptAliveMs = now;
    for (const d of this.handedOut) d.jm.working();
    for (const b of this.buffers.values()) for (const d of b.items) d.jm.working();
  }

  private async keepReading(buffered: Buffered): Promise<void> {
    const { reader } = buffered;
    const selector = this.selectorOf(reader.mq.topic);
    const ahead = this.options.pullBatchSize;
    while (!reader.dropped && !this.connection.isClosed) {
      try {
        await readQueue(this.connection, reader, ahead, async (jm: JsMsg) => {
          const delivery = deliveryOf(jm, selector);
          if (delivery === null) return;
          buffered.items.push(delivery);
          this.wake();
          while (buffered.items.length >= ahead && !reader.dropped) await reader.changed();
        });
      } catch (err) {
        if (reader.dropped) break;
        this.reportError(`read ${reader.mq.topic}/${reader.mq.queueId} (again in ` +
          `${READ_RETRY_DELAY_MS} ms)`, err);
        await new Promise((resolve) => setTimeout(resolve, READ_RETRY_DELAY_MS));
      }
    }
  }

  /** Up to pullBatchSize buffered deliveries, taking turns between unpaused queues. */
  private take(): Delivery[] {
    const queues = [...this.buffers.entries()].filter(([key, b]) =>
      !this.paused.has(key) && b.items.length > 0).map(([, b]) => b);
    const out: Delivery[] = [];
    for (let i = 0; i < queues.length && out.length < this.options.pullBatchSize; i++) {
      const b = queues[(this.nextQueue + i) % queues.length]!;
      out.push(...b.items.splice(0, this.options.pullBatchSize - out.length));
      b.reader.notify();
    }
    this.nextQueue = queues.length === 0 ? 0 : (this.nextQueue + 1) % queues.length;
    return out;
  }

  /** Acknowledge what polls handed out, without waiting for an answer. */
  private acknowledgeNow(): void {
    for (const d of this.handedOut.splice(0)) d.jm.ack();
  }

  /** Acknowledge what polls handed out; resolves when the servers confirmed each. */
  private async acknowledgeConfirmed(): Promise<void> {
    const timeout = this.connection.options.requestTimeoutMs;
    await Promise.all(this.handedOut.splice(0).map((d) => d.jm.ackAck({ timeout })
      .catch((err: unknown) => {
        throw this.connection.translate(err, 'commit');
      })));
  }

  /** Messages of a poll that the application never saw: delivered again at once. */
  private giveBackUnread(unread: readonly MessageExt[]): void {
    if (unread.length === 0) return;
    const unseen = (d: Delivery): boolean => unread.some((m) =>
      m.queueOffset === d.ext.queueOffset && m.topic === d.ext.topic);
    const back = this.handedOut.filter(unseen);
    this.handedOut = this.handedOut.filter((d) => !unseen(d));
    for (const d of back.sort((a, b) => a.jm.seq - b.jm.seq)) d.jm.nak();
  }

  /** Wait (holding the process alive) for a buffered message, a wake-up, or `ms`. */
  private async waitForMessages(ms: number): Promise<void> {
    let wake: () => void = () => undefined;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.wakers.add(wake);
    const timer = setTimeout(wake, ms);
    try {
      await woken;
    } finally {
      clearTimeout(timer);
      this.wakers.delete(wake);
    }
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = new Set();
    for (const w of wakers) w();
  }
}
