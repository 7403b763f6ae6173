/**
 * PushConsumer (RocketMQ's DefaultMQPushConsumer): the store calls the application's listener.
 * For each owned queue a fetch loop reads messages into a ProcessQueue and hands them to the
 * consume service (concurrent or orderly); when the queue is empty the loop waits on the
 * broker's long polling (woken by the append, no busy loop); when the ProcessQueue holds
 * `pullThresholdForQueue` messages or `pullThresholdSizeForQueue` MiB, it waits for
 * acknowledgements, so memory stays bounded whatever the backlog.
 *
 * In CLUSTERING mode a queue is consumed only under the broker's queue lock: when a rebalance
 * moves it, the old owner finishes its listener calls in flight and commits before the new owner
 * reads the committed offset. BROADCASTING instances each read every queue with their own offsets.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import {
  MessageSelector, RETRY_TOPIC_PREFIX, type BrokerPort, type FetchResult, type MessageExt,
  type MessageQueue,
} from '../broker/port.js';
import { ConsumeService, type ConsumeListener } from './consume-service.js';
import { ConsumerBase } from './consumer-base.js';
import type { ResolvedPushOptions } from './consumer-options.js';
import { fetchRequest } from './fetch-request.js';
import { holdProcess } from './keep-alive.js';
import { ProcessQueue } from './process-queue.js';
import { queueKey } from './rebalance.js';

export type { ConsumeContext, ConsumeListener, ConsumeResult } from './consume-service.js';

/** What a push consumer holds, for pocketmq's own tests and tools (`pocketmq/internal`). */
export interface PushConsumerInternals {
  /** The ProcessQueues of the queues it owns now. */
  processQueues(): ProcessQueue[];
}

const internalsOf = new WeakMap<PushConsumer, PushConsumerInternals>();

/** A push consumer's insides (unstable; `pocketmq/internal`). */
export function pushConsumerInternals(consumer: PushConsumer): PushConsumerInternals {
  const found = internalsOf.get(consumer);
  if (found === undefined) throw new TypeError('not a PushConsumer');
  return found;
}

export class PushConsumer extends ConsumerBase {
  private listener: ConsumeListener | null = null;
  private readonly queues = new Map<string, ProcessQueue>();
  private readonly loops = new Map<string, Promise<void>>();
  private service: ConsumeService | null = null;
  /** Queues whose offset changed since the last write (`ProcessQueue.offsetDirty` set). */
  private readonly dirtyQueues: ProcessQueue[] = [];
  private offsetsScheduled = false;
  private stopping: Promise<void> | null = null;
  /** Releases the process once the consumer has shut down. */
  private releaseProcess: (() => void) | null = null;

  /** Use `store.createPushConsumer`. */
  constructor(port: BrokerPort, private readonly options: ResolvedPushOptions,
    onShutdown: (consumer: ConsumerBase) => void) {
    super(port, options, onShutdown);
    internalsOf.set(this, { processQueues: () => [...this.queues.values()] });
  }

  override subscribe(topic: string, selector: string | MessageSelector = '*'): void {
    super.subscribe(topic, selector);
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
   * Join the group and start consuming; resolves once the first rebalance is done. From here
   * until `shutdown` (or the store's `close`) the consumer keeps the process alive.
   */
  async start(): Promise<void> {
    this.checkState('created', 'start');
    if (this.listener === null) {
      throw new PocketMQError('INVALID_STATE', 'register a message listener before start');
    }
    if (this.subscriptions.size === 0) {
      throw new PocketMQError('INVALID_STATE', 'subscribe to a topic before start');
    }
    this.port.checkOpen();
    // Failed messages come back through the group's retry topic (orderly consumers retry in
    // place, but read what an earlier concurrent instance of the group left there; broadcasting
    // ones are not retried), as RocketMQ's clustering consumers subscribe to it.
    const retries = `${RETRY_TOPIC_PREFIX}${this.options.group}`;
    if (this.options.messageModel === 'CLUSTERING' && !this.subscriptions.has(retries)) {
      this.subscriptions.set(retries, MessageSelector.byTag('*'));
    }
    this.service = new ConsumeService({
      port: this.port, options: this.options, listener: this.listener,
      group: this.options.group, clientId: () => this.clientId,
      commit: (pq, offset) => this.commitOffset(pq, offset),
      onError: (what, err, messages) => this.reportError(what, err, messages),
    });
    // A join refused (mixed message models) leaves the consumer 'created'.
    this.state = 'running';
    try {
      await this.join();
    } catch (err) {
      this.state = 'created';
      throw err;
    }
    this.releaseProcess = holdProcess();
    await this.rebalancer.idle();
  }

  /** Queues this instance consumes now. */
  assignment(): MessageQueue[] {
    return [...this.queues.values()].map((pq) => pq.mq);
  }

  /**
   * Stop fetching, wait for listener calls in flight, commit and write offsets, leave. Every
   * call (the application's, the store's close) resolves only when all that is done.
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
        await this.leave();
        await this.persistAtShutdown();
      } finally {
        this.state = 'stopped';
        this.releaseProcess?.();
      }
    })();
    return this.stopping;
  }

  protected addQueue(mq: MessageQueue): Promise<void> {
    const key = queueKey(mq);
    if (this.queues.has(key)) return Promise.resolve();
    const pq = new ProcessQueue(mq, this.options.orderly);
    this.queues.set(key, pq);
    this.loops.set(key, this.keepFetching(pq));
    return Promise.resolve();
  }

  protected abandonQueue(mq: MessageQueue): void {
    const key = queueKey(mq);
    this.queues.get(key)?.drop();
    this.queues.delete(key);
    this.loops.delete(key);
  }

  /** Failed messages of `mq` are due again (the broker's retry backoff passed). */
  protected override redeliver(mq: MessageQueue, messages: readonly MessageExt[]): void {
    const pq = this.queues.get(queueKey(mq));
    if (pq === undefined || pq.dropped) return;
    this.service?.redeliver(pq, messages);
  }

  /** Failed messages of `mq` reached the dead-letter queue: acknowledge them. */
  protected override deadLettered(mq: MessageQueue, messages: readonly MessageExt[]): void {
    const pq = this.queues.get(queueKey(mq));
    if (pq === undefined || pq.dropped) return;
    this.commitOffset(pq, pq.remove(messages));
  }

  protected async removeQueue(mq: MessageQueue): Promise<void> {
    const key = queueKey(mq);
    const pq = this.queues.get(key);
    if (pq === undefined) return;
    pq.drop();
    try {
      await this.loops.get(key);
      await this.service?.drain(pq);
      if (pq.started) this.commitOffset(pq, pq.ackOffset(), true);
    } finally {
      // Whatever failed, the lock goes: the next owner must not wait for it forever.
      this.queues.delete(key);
      this.loops.delete(key);
      if (this.options.messageModel === 'CLUSTERING') {
        this.port.unlockQueue(this.options.group, mq, this.clientId);
      }
    }
  }

  /**
   * Record the group's offset of a queue. Acknowledgements come one per listener call, so the
   * offsets table takes them once per event-loop turn; `force` (a queue given up) writes now.
   */
  private commitOffset(pq: ProcessQueue, offset: number, force = false): void {
    if (force) {
      // The pending write of this queue, if any, is this one or older: write now instead.
      const pending = this.undirty(pq);
      if (pending || offset !== pq.committed) {
        pq.committed = offset;
        this.writeOffset(pq);
      }
      return;
    }
    if (pq.dropped || offset === pq.committed) return;
    pq.committed = offset;
    if (!pq.offsetDirty) {
      pq.offsetDirty = true;
      this.dirtyQueues.push(pq);
    }
    if (this.offsetsScheduled) return;
    this.offsetsScheduled = true;
    setImmediate(() => {
      this.offsetsScheduled = false;
      this.flushOffsets();
    });
  }

  protected override flushOffsets(): void {
    // Dropped queues too: a queue's final write (removeQueue) takes it out of this list.
    // Emptied with pop, which keeps the array (a Set's clear allocated every turn).
    const dirty = this.dirtyQueues;
    for (const pq of dirty) {
      pq.offsetDirty = false;
      this.writeOffset(pq);
    }
    while (dirty.length > 0) dirty.pop();
  }

  /** Take `pq` out of the queues with a write pending; whether it was there. */
  private undirty(pq: ProcessQueue): boolean {
    if (!pq.offsetDirty) return false;
    pq.offsetDirty = false;
    // A forced write (a queue let go) is rare: splice's garbage does not matter here.
    const at = this.dirtyQueues.indexOf(pq);
    if (at >= 0) this.dirtyQueues.splice(at, 1);
    return true;
  }

  private writeOffset(pq: ProcessQueue): void {
    try {
      this.port.commitOffset(this.offsetGroup, pq.mq, pq.committed);
    } catch (err) {
      this.reportError('commit offset', err);
    }
  }

  /**
   * Run the fetch loop until the queue is dropped. A loop that fails (a read error, the
   * offsets table full) starts again after `limits.fetchRetryDelayMs` from where it was, as
   * RocketMQ pulls again after an exception, instead of leaving the queue owned and never read.
   */
  private async keepFetching(pq: ProcessQueue): Promise<void> {
    while (!pq.dropped && !this.port.isClosed) {
      try {
        await this.fetchLoop(pq);
        return;
      } catch (err) {
        // The owner process went away: the store is changing hands, and the hand-over gives
        // this queue up (reset) or the retry below finds the new owner. Not the app's error.
        if (!(err instanceof PocketMQError && err.code === 'OWNER_UNAVAILABLE')) {
          this.reportError(`fetch ${pq.mq.topic}/${pq.mq.queueId} (again in ` +
            `${limits.fetchRetryDelayMs} ms)`, err);
        }
        await pq.pause(this.port.info.clock, limits.fetchRetryDelayMs);
      }
    }
  }

  private async fetchLoop(pq: ProcessQueue): Promise<void> {
    const { mq } = pq;
    const o = this.options;
    if (!pq.started) {
      if (o.messageModel === 'CLUSTERING') {
        const locked = await this.port.lockQueue(o.group, mq, this.clientId, pq.signal);
        if (!locked || pq.dropped) return;
      }
      pq.nextOffset = await this.startOffsetOf(mq);
      if (pq.dropped) return;
      pq.started = true;
    }
    const selector = this.selectorOf(mq.topic);
    let fetches = 0;
    while (!pq.dropped) {
      if (pq.count >= o.pullThresholdForQueue || pq.bytes >= o.pullThresholdSizeBytes) {
        await pq.changed();
        fetches = 0;
        continue;
      }
      // Only a loop that keeps finding messages yields (catch-up); one woken by an arrival
      // fetches at once, so a message reaches the listener in the turn it was committed.
      if (++fetches % limits.fetchesPerTurn === 0) await yieldToLoop();
      if (pq.dropped || this.port.isClosed) return;
      const fetched = this.port.fetch(fetchRequest(mq.topic, mq.queueId, pq.nextOffset,
        o.pullBatchSize, selector, o.pullThresholdSizeBytes));
      // In process the result is there at once: no promise hop per fetch.
      const result: FetchResult = fetched instanceof Promise ? await fetched : fetched;
      if (pq.dropped) return;
      pq.nextOffset = result.nextBeginOffset;
      if (result.messages.length > 0) {
        pq.put(result.messages);
        this.service!.submit(pq, result.messages);
        // Caught up with the queue: wait for the next arrival at once, without a fetch that
        // would find nothing (the wait returns at once if more arrived meanwhile).
        if (!(result.nextBeginOffset >= result.maxOffset)) continue;
      } else {
        // Nothing to hand out: move the group's offset past what the filter skipped.
        if (pq.count === 0) this.commitOffset(pq, pq.nextOffset);
        if (result.status !== 'NO_NEW_MSG') continue;
      }
      await this.port.waitForMessage(mq, pq.nextOffset, limits.longPollMs, pq.signal);
      fetches = 0;
    }
  }
}

export type { MessageExt };
