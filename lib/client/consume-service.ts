/**
 * The consume service of a push consumer: calls the listener with batches of at most
 * `consumeMessageBatchMaxSize` messages, at most `consumeThreadMax` calls in flight.
 *
 * A listener that resolves (with nothing, or with anything but 'RECONSUME_LATER') consumed its
 * messages, as in kafkajs and BullMQ; 'RECONSUME_LATER', a throw or a rejection asks for
 * redelivery, and the error reaches the application (the consumer's `'error'` event / `onError`).
 *
 * Concurrent (RocketMQ's ConsumeMessageConcurrentlyService): batches of every queue run side by
 * side. Failed messages are given back to the broker (`sendBack`), which stores them in the
 * group's retry topic (read by the consumer with its topics) or `%DLQ%<group>`; they are then
 * acknowledged, so the queue moves on. One the broker could not store stays unacknowledged until
 * the broker hands it back. Broadcasting never retries.
 *
 * Orderly (ConsumeMessageOrderlyService): one batch of a queue at a time, in offset order; a
 * failure suspends the queue `suspendCurrentQueueTimeMillis` and retries the same batch in place,
 * with reconsumeTimes counted up; a message out of retries goes to the DLQ (a failed move holds
 * the queue and is tried again, without calling the listener again).
 */
import { channel } from 'node:diagnostics_channel';
import { channels, type RetryMessage } from '../channels.js';
import type {
  BrokerPort, ConsumeOutcome, MessageExt, MessageQueue,
} from '../broker/port.js';
import type { ResolvedPushOptions } from './consumer-options.js';
import { Fifo } from './fifo.js';
import type { ProcessQueue } from './process-queue.js';
import { monotonicMs } from '../builtins.js';

const retryChannel = channel(channels.retry);

export type ConsumeResult = 'CONSUME_SUCCESS' | 'RECONSUME_LATER';

export interface ConsumeContext {
  readonly messageQueue: MessageQueue;
  readonly group: string;
  readonly orderly: boolean;
}

/**
 * The application's handler. Resolving with nothing (an `async` function without `return`) or
 * 'CONSUME_SUCCESS' acknowledges the messages; 'RECONSUME_LATER' or a throw redelivers them.
 */
export type ConsumeListener = (messages: MessageExt[], context: ConsumeContext) =>
  ConsumeResult | void | Promise<ConsumeResult | void>;

export interface ConsumeServiceHost {
  readonly port: BrokerPort;
  readonly options: ResolvedPushOptions;
  readonly listener: ConsumeListener;
  readonly group: string;
  /** The consumer instance's id in its group. */
  clientId(): string;
  /** Record the group's offset for the queue. */
  commit(pq: ProcessQueue, offset: number): void;
  onError(what: string, err: unknown, messages?: readonly MessageExt[]): void;
}

/**
 * A listener call waiting for its turn, one per message by default: an instance of a class
 * holding an array made by `slice`, not literals. A backlog of calls waiting here was enough
 * for V8 to allocate every later one in the old generation, where they die: a push consumer's
 * catch-up then ran at a third of its speed (see StoredMessage in broker/message.ts).
 */
class Request {
  readonly messages: MessageExt[];
  constructor(readonly pq: ProcessQueue, messages: readonly MessageExt[], from: number,
    to: number) {
    this.messages = messages.slice(from, to);
  }
}

/** How one listener call ended. */
type Outcome = Extract<ConsumeOutcome, 'CONSUME_SUCCESS' | 'RECONSUME_LATER' | 'THROWN'>;

export class ConsumeService {
  private inFlight = 0;
  private readonly ready = new Fifo<Request>();
  private pumping = false;
  private readonly slotWaiters: (() => void)[] = [];

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
      for (let i = 0; i < messages.length; i++) {
        this.ready.push(new Request(pq, messages, i, i + 1));
      }
    } else {
      for (let i = 0; i < messages.length; i += size) {
        this.ready.push(new Request(pq, messages, i, i + size));
      }
    }
    this.pump();
  }

  /** Messages the broker hands back after their retry backoff. */
  redeliver(pq: ProcessQueue, messages: readonly MessageExt[]): void {
    for (let i = 0; i < messages.length; i++) this.ready.push(new Request(pq, messages, i, i + 1));
    this.pump();
  }

  /** Wait until no listener call of `pq` is in flight; cancel its pending redeliveries. */
  async drain(pq: ProcessQueue): Promise<void> {
    this.host.port.cancelRedeliveries(this.host.group, this.host.clientId(), pq.mq);
    while (pq.inFlight > 0 || pq.consuming) await pq.changed();
  }

  private pump(): void {
    // A listener that answers synchronously finishes inside this loop: no nested pumps.
    if (this.pumping) return;
    this.pumping = true;
    try {
      const max = this.host.options.consumeThreadMax;
      while (this.inFlight < max && this.ready.size > 0) {
        const request = this.ready.shift()!;
        if (request.pq.dropped) continue;
        this.inFlight++;
        request.pq.inFlight++;
        this.runConcurrently(request);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Call the listener; a synchronous answer is handled without a promise hop or a closure. */
  private runConcurrently(request: Request): void {
    const outcome = this.call(request.pq, request.messages, false);
    if (typeof outcome === 'string') this.finishConcurrently(request, outcome);
    else void outcome.then((o) => this.finishConcurrently(request, o));
  }

  /**
   * Call the listener: how it ended, at once when it answered synchronously, else a promise
   * that never rejects. Errors go to the application; the trace hears of every call.
   */
  private call(pq: ProcessQueue, messages: MessageExt[], orderly: boolean):
    Outcome | Promise<Outcome> {
    const port = this.host.port;
    const tracing = port.info.tracing;
    const timestamp = tracing ? port.info.clock.now() : 0;
    const started = tracing ? monotonicMs() : 0;
    let answer: unknown;
    try {
      answer = this.host.listener(messages,
        { messageQueue: pq.mq, group: this.host.group, orderly });
    } catch (err) {
      this.host.onError('listener', err, messages);
      return this.traced(tracing, messages, 'THROWN', timestamp, started);
    }
    if (answer !== null && typeof (answer as Promise<unknown>)?.then === 'function') {
      return (answer as Promise<unknown>).then(
        (value) => this.traced(tracing, messages, outcomeOf(value), timestamp, started),
        (err: unknown) => {
          this.host.onError('listener', err, messages);
          return this.traced(tracing, messages, 'THROWN', timestamp, started);
        });
    }
    return this.traced(tracing, messages, outcomeOf(answer), timestamp, started);
  }

  /** `outcome`, reported to the trace first when it is on. */
  private traced(tracing: boolean, messages: MessageExt[], outcome: Outcome, timestamp: number,
    started: number): Outcome {
    if (tracing) {
      this.host.port.reportConsumed({ group: this.host.group, clientId: this.host.clientId(),
        messages, outcome, timestamp, durationMs: monotonicMs() - started });
    }
    return outcome;
  }

  private finishConcurrently(request: Request, outcome: Outcome): void {
    const { pq, messages } = request;
    try {
      if (outcome === 'CONSUME_SUCCESS' || this.host.options.messageModel === 'BROADCASTING') {
        this.host.commit(pq, pq.remove(messages));
      } else {
        this.giveBack(pq, messages).catch((err: unknown) => this.host.onError('retry', err))
          .finally(() => this.release(pq));
        return;
      }
    } catch (err) {
      this.host.onError('commit offset', err);
    }
    this.release(pq);
  }

  private release(pq: ProcessQueue): void {
    this.inFlight--;
    pq.inFlight--;
    pq.notify();
    this.pump();
  }

  /** Failed messages back to the broker: those it dead-lettered now are acknowledged. */
  private async giveBack(pq: ProcessQueue, messages: readonly MessageExt[]): Promise<void> {
    const result = await this.host.port.sendBack({ group: this.host.group,
      clientId: this.host.clientId(), mq: pq.mq, messages,
      maxReconsumeTimes: this.host.options.maxReconsumeTimes });
    if (result.acknowledged.length > 0) this.host.commit(pq, pq.remove(result.acknowledged));
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
    const clock = this.host.port.info.clock;
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
    const outcome = await this.call(pq, batch, true);
    if (outcome === 'CONSUME_SUCCESS') {
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
        if (retryChannel.hasSubscribers) this.publishRetry(again);
        suspend = true;
      }
    }
    if (dead.length > 0 && (await this.deadLetter(pq, dead)).length > 0) suspend = true;
    return suspend;
  }

  /** Orderly: move messages to the DLQ and acknowledge them; resolves those that failed. */
  private async deadLetter(pq: ProcessQueue, dead: readonly MessageExt[]): Promise<MessageExt[]> {
    const failed = await this.host.port.deadLetter(this.host.group, this.host.clientId(), dead);
    const failedSet = new Set(failed);
    const moved = dead.filter((m) => !failedSet.has(m));
    for (const m of failed) pq.deadLetterDue.add(m.queueOffset);
    if (moved.length > 0) this.host.commit(pq, pq.remove(moved));
    return failed;
  }

  private publishRetry(m: MessageExt): void {
    const message: RetryMessage = { group: this.host.group, clientId: this.host.clientId(),
      topic: m.topic, msgId: m.msgId, queueId: m.queueId, queueOffset: m.queueOffset,
      reconsumeTimes: m.reconsumeTimes, delayMs: this.host.options.suspendCurrentQueueTimeMillis,
      orderly: true };
    retryChannel.publish(message);
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

/** A resolved listener answer: only 'RECONSUME_LATER' asks for redelivery. */
function outcomeOf(answer: unknown): Outcome {
  return answer === 'RECONSUME_LATER' ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
}
