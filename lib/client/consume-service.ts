/**
 * The consume service of a push consumer: calls the listener with batches of at most
 * `consumeMessageBatchMaxSize` messages, at most `consumeThreadMax` calls in flight.
 *
 * Concurrent (RocketMQ's ConsumeMessageConcurrentlyService): batches of every queue run side by
 * side. `RECONSUME_LATER` or a throw keeps the messages unacknowledged and hands them out again
 * after the retry backoff (delay level 3 + reconsumeTimes) with reconsumeTimes counted up; after
 * `maxReconsumeTimes` redeliveries a message goes to `%DLQ%<group>`. Broadcasting never retries.
 *
 * Orderly (ConsumeMessageOrderlyService): one batch of a queue at a time, in offset order;
 * `RECONSUME_LATER` suspends the queue `suspendCurrentQueueTimeMillis` and retries the same batch.
 *
 * A move to the DLQ that fails (disk full) leaves the message held, so the group's offset stays
 * before it, and is tried again later without calling the listener again: a message is never
 * stuck in a ProcessQueue with nothing left to move it on.
 *
 * Each redelivery scheduled publishes on `pocketmq:retry`; each move to the DLQ is traced when
 * the store traces (the broker publishes it on `pocketmq:dlq`).
 */
import { channel } from 'node:diagnostics_channel';
import { channels, type RetryMessage } from '../channels.js';
import type { Broker } from '../broker/broker.js';
import type { MessageExt } from '../broker/message.js';
import type { TimerHandle } from '../store/clock.js';
import type { MessageQueue } from './allocate.js';
import type { ResolvedPushOptions } from './consumer-options.js';
import type { ProcessQueue } from './process-queue.js';
import type { Tracer } from './trace.js';

const retryChannel = channel(channels.retry);

export type ConsumeResult = 'CONSUME_SUCCESS' | 'RECONSUME_LATER';

export interface ConsumeContext {
  readonly messageQueue: MessageQueue;
  readonly group: string;
  readonly orderly: boolean;
}

/** The application's handler; a throw or any result but CONSUME_SUCCESS is RECONSUME_LATER. */
export type ConsumeListener =
  (messages: MessageExt[], context: ConsumeContext) => ConsumeResult | Promise<ConsumeResult>;

export interface ConsumeServiceHost {
  readonly broker: Broker;
  readonly options: ResolvedPushOptions;
  readonly listener: ConsumeListener;
  readonly group: string;
  /** The consumer instance's id in its group. */
  clientId(): string;
  /** The store's message trace, when on. */
  readonly tracer: Tracer | null;
  /** Record the group's offset for the queue. */
  commit(pq: ProcessQueue, offset: number): void;
  onError(what: string, err: unknown): void;
}

/** How long a failed move to the dead-letter queue waits before it is tried again. */
export const DEAD_LETTER_RETRY_MS = 5000;

interface Request {
  readonly pq: ProcessQueue;
  readonly messages: MessageExt[];
}

export class ConsumeService {
  private inFlight = 0;
  private ready: Request[] = [];
  private readyHead = 0;
  private pumping = false;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly retryTimers = new Map<ProcessQueue, Set<TimerHandle>>();

  constructor(private readonly host: ConsumeServiceHost) {}

  /** Messages just fetched into `pq`, to hand to the listener. */
  submit(pq: ProcessQueue, messages: readonly MessageExt[]): void {
    const o = this.host.options;
    if (o.orderly) {
      this.startOrderly(pq);
      return;
    }
    const size = o.consumeMessageBatchMaxSize;
    if (size === 1) {
      for (const m of messages) this.ready.push({ pq, messages: [m] });
    } else {
      for (let i = 0; i < messages.length; i += size) {
        this.ready.push({ pq, messages: messages.slice(i, i + size) });
      }
    }
    this.pump();
  }

  /** Wait until no listener call of `pq` is in flight; cancel its pending redeliveries. */
  async drain(pq: ProcessQueue): Promise<void> {
    for (const timer of this.retryTimers.get(pq) ?? []) {
      this.host.broker.options.clock.clearTimeout(timer);
    }
    this.retryTimers.delete(pq);
    while (pq.inFlight > 0 || pq.consuming) await pq.changed();
  }

  private pump(): void {
    // A listener that answers synchronously finishes inside this loop: no nested pumps.
    if (this.pumping) return;
    this.pumping = true;
    try {
      const max = this.host.options.consumeThreadMax;
      while (this.inFlight < max && this.readyHead < this.ready.length) {
        const request = this.ready[this.readyHead++]!;
        if (request.pq.dropped) continue;
        this.inFlight++;
        request.pq.inFlight++;
        this.runConcurrently(request);
      }
      if (this.readyHead === this.ready.length) {
        this.ready = [];
        this.readyHead = 0;
      } else if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
        this.ready = this.ready.slice(this.readyHead);
        this.readyHead = 0;
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Call the listener; a synchronous answer is handled without a promise hop. */
  private runConcurrently(request: Request): void {
    let result: unknown;
    try {
      result = this.host.listener(request.messages,
        { messageQueue: request.pq.mq, group: this.host.group, orderly: false });
    } catch (err) {
      this.host.onError('listener threw (taken as RECONSUME_LATER)', err);
      result = 'RECONSUME_LATER';
    }
    if (result !== null && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then((answer) => this.finishConcurrently(request, answer),
        (err: unknown) => {
          this.host.onError('listener threw (taken as RECONSUME_LATER)', err);
          this.finishConcurrently(request, 'RECONSUME_LATER');
        });
    } else {
      this.finishConcurrently(request, result);
    }
  }

  private finishConcurrently(request: Request, answer: unknown): void {
    const { pq, messages } = request;
    const result = this.resultOf(answer);
    try {
      if (result === 'CONSUME_SUCCESS' || this.host.options.messageModel === 'BROADCASTING') {
        if (result !== 'CONSUME_SUCCESS') {
          this.host.onError('broadcasting consumer failed a message (not retried)', result);
        }
        this.host.commit(pq, pq.remove(messages));
      } else {
        this.retryLater(pq, messages).catch((err: unknown) => this.host.onError('retry', err))
          .finally(() => this.release(pq));
        return;
      }
    } catch (err) {
      this.host.onError('consume', err);
    }
    this.release(pq);
  }

  private release(pq: ProcessQueue): void {
    this.inFlight--;
    pq.inFlight--;
    pq.notify();
    this.pump();
  }

  private resultOf(answer: unknown): ConsumeResult {
    if (answer === 'CONSUME_SUCCESS') return answer;
    if (answer !== 'RECONSUME_LATER') {
      this.host.onError('listener', `returned ${String(answer)}; taken as RECONSUME_LATER`);
    }
    return 'RECONSUME_LATER';
  }

  /** Redeliver after the backoff, or move to the dead-letter queue once out of retries. */
  private async retryLater(pq: ProcessQueue, messages: readonly MessageExt[]): Promise<void> {
    const max = this.host.options.maxReconsumeTimes;
    const dead: MessageExt[] = [];
    for (const m of messages) {
      if (m.reconsumeTimes >= max) {
        dead.push(m);
        continue;
      }
      const again = { ...m, reconsumeTimes: m.reconsumeTimes + 1 };
      pq.update(again);
      const delayMs = this.host.broker.retryDelayMs(m.reconsumeTimes);
      if (retryChannel.hasSubscribers) this.publishRetry(again, delayMs, false);
      this.schedule(pq, delayMs, () => {
        this.ready.push({ pq, messages: [again] });
        this.pump();
      });
    }
    if (dead.length > 0) this.deadLetterLater(pq, await this.deadLetter(pq, dead));
  }

  private publishRetry(m: MessageExt, delayMs: number, orderly: boolean): void {
    const message: RetryMessage = { group: this.host.group, clientId: this.host.clientId(),
      topic: m.topic, msgId: m.msgId, queueId: m.queueId, queueOffset: m.queueOffset,
      reconsumeTimes: m.reconsumeTimes, delayMs, orderly };
    retryChannel.publish(message);
  }

  /** Run `fn` after `delayMs` unless the queue is dropped first (drain cancels it). */
  private schedule(pq: ProcessQueue, delayMs: number, fn: () => void): void {
    if (pq.dropped) return; // drained already: the next owner reads it from the log
    const clock = this.host.broker.options.clock;
    let timers = this.retryTimers.get(pq);
    if (timers === undefined) {
      timers = new Set();
      this.retryTimers.set(pq, timers);
    }
    const set = timers;
    const timer = clock.setTimeout(() => {
      set.delete(timer);
      if (!pq.dropped) fn();
    }, delayMs);
    set.add(timer);
  }

  /**
   * Concurrent: messages whose move to the DLQ failed stay held (the group's offset waits
   * before them) and the move is tried again later, not the listener.
   */
  private deadLetterLater(pq: ProcessQueue, failed: readonly MessageExt[]): void {
    if (failed.length === 0) return;
    this.schedule(pq, DEAD_LETTER_RETRY_MS, () => {
      pq.inFlight++;
      void this.deadLetter(pq, failed).then((again) => this.deadLetterLater(pq, again))
        .finally(() => {
          pq.inFlight--;
          pq.notify();
        });
    });
  }

  /** Move messages to `%DLQ%<group>` and acknowledge them; resolves those that failed. */
  private async deadLetter(pq: ProcessQueue, dead: readonly MessageExt[]): Promise<MessageExt[]> {
    const moved: MessageExt[] = [];
    const failed: MessageExt[] = [];
    for (const m of dead) {
      try {
        await this.host.broker.sendToDeadLetter(this.host.group, m);
        moved.push(m);
        this.host.tracer?.deadLettered(m, this.host.group, this.host.clientId());
      } catch (err) {
        this.host.onError('move to the dead-letter queue failed (tried again later)', err);
        pq.deadLetterDue.add(m.queueOffset);
        failed.push(m);
      }
    }
    if (moved.length > 0) this.host.commit(pq, pq.remove(moved));
    return failed;
  }

  private async invoke(pq: ProcessQueue, messages: MessageExt[],
    orderly: boolean): Promise<ConsumeResult> {
    try {
      return this.resultOf(await this.host.listener(messages,
        { messageQueue: pq.mq, group: this.host.group, orderly }));
    } catch (err) {
      this.host.onError('listener threw (taken as RECONSUME_LATER)', err);
      return 'RECONSUME_LATER';
    }
  }

  private startOrderly(pq: ProcessQueue): void {
    if (pq.consuming || pq.dropped) return;
    pq.consuming = true;
    this.orderlyLoop(pq).catch((err: unknown) => {
      pq.consuming = false;
      pq.notify();
      this.host.onError('orderly consume', err);
    });
  }

  private async orderlyLoop(pq: ProcessQueue): Promise<void> {
    const clock = this.host.broker.options.clock;
    while (!pq.dropped && pq.count > 0) {
      await this.acquireSlot();
      let suspend = false;
      pq.inFlight++;
      try {
        // A queue given up while it waited for a slot is handled no more: its lock moves on.
        if (!pq.dropped) suspend = await this.orderlyStep(pq);
      } finally {
        pq.inFlight--;
        this.releaseSlot();
        pq.notify();
      }
      if (suspend) await pq.pause(clock, this.host.options.suspendCurrentQueueTimeMillis);
    }
    // Same turn as the last count check: a fetch that adds messages after this starts a new loop.
    pq.consuming = false;
    pq.notify();
  }

  /** One batch at the head of the queue; resolves true when the queue should pause. */
  private async orderlyStep(pq: ProcessQueue): Promise<boolean> {
    const o = this.host.options;
    if (pq.deadLetterDue.size > 0) {
      const due = pq.head(pq.count).filter((m) => pq.deadLetterDue.has(m.queueOffset));
      return (await this.deadLetter(pq, due)).length > 0;
    }
    const batch = pq.head(o.consumeMessageBatchMaxSize);
    const result = await this.invoke(pq, batch, true);
    if (result === 'CONSUME_SUCCESS') {
      this.host.commit(pq, pq.remove(batch));
      return false;
    }
    let suspend = false;
    const dead: MessageExt[] = [];
    for (const m of batch) {
      if (m.reconsumeTimes >= o.maxReconsumeTimes) {
        dead.push(m);
      } else {
        const again = { ...m, reconsumeTimes: m.reconsumeTimes + 1 };
        pq.update(again);
        if (retryChannel.hasSubscribers) {
          this.publishRetry(again, o.suspendCurrentQueueTimeMillis, true);
        }
        suspend = true;
      }
    }
    if (dead.length > 0 && (await this.deadLetter(pq, dead)).length > 0) suspend = true;
    return suspend;
  }

  private acquireSlot(): Promise<void> {
    if (this.inFlight < this.host.options.consumeThreadMax) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private releaseSlot(): void {
    const next = this.slotWaiters.shift();
    if (next !== undefined) next();
    else {
      this.inFlight--;
      this.pump();
    }
  }
}
