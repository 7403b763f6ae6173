/**
 * PullConsumer (RocketMQ's DefaultLitePullConsumer): the application asks for messages with
 * `poll(timeoutMs)` or `for await`. Queues come from `subscribe` (shared with the group's other
 * instances by rebalancing) or from `assign` (exactly the queues given). Each owned queue has a
 * position, the next offset to read; `commit` stores positions as the group's offsets, and with
 * `autoCommit` what a poll returned is committed at the next poll and at shutdown.
 *
 * A poll reads straight from the store (it is in the process): nothing is prefetched, so memory
 * stays bounded by `pullBatchSize` whatever the backlog.
 */
import { PocketMQError } from '../errors.js';
import type { Broker, FetchResult } from '../broker/broker.js';
import type { MessageSelector } from '../broker/filter/message-selector.js';
import type { MessageExt } from '../broker/message.js';
import { checkTopicName } from '../broker/names.js';
import type { Clock } from '../store/clock.js';
import type { MessageQueue } from './allocate.js';
import { ConsumerBase } from './consumer-base.js';
import type { ResolvedPullOptions } from './consumer-options.js';
import { queueKey } from './rebalance.js';
import type { Tracer } from './trace.js';

interface Position {
  readonly mq: MessageQueue;
  /** Next offset to read. */
  offset: number;
  /** What was last committed from here (-1: nothing yet). */
  committed: number;
  paused: boolean;
}

/** Longest single poll wait; longer timeouts wait again. */
const MAX_POLL_TIMEOUT_MS = 2 ** 31 - 1;

export class PullConsumer extends ConsumerBase implements AsyncIterable<MessageExt> {
  private readonly positions = new Map<string, Position>();
  private assigned: MessageQueue[] | null = null;
  private nextQueue = 0;
  /** Wakes every poll waiting now (several may wait at once: poll and `for await`). */
  private readonly wakers = new Set<() => void>();
  private readonly pausedKeys = new Set<string>();
  private stopping: Promise<void> | null = null;

  /** Use `store.createPullConsumer`. */
  constructor(broker: Broker, private readonly options: ResolvedPullOptions,
    private readonly clock: Clock, private readonly release: (consumer: ConsumerBase) => void,
    private readonly tracer: Tracer | null = null) {
    super(broker, options, release);
  }

  override subscribe(topic: string, selector: string | MessageSelector = '*'): void {
    if (this.assigned !== null) {
      throw new PocketMQError('INVALID_STATE', 'a consumer uses either subscribe or assign');
    }
    super.subscribe(topic, selector);
  }

  /** Read exactly these queues (no group rebalancing). Replaces an earlier assignment. */
  assign(queues: readonly MessageQueue[]): void {
    if (this.subscriptions.size > 0 && this.assigned === null) {
      throw new PocketMQError('INVALID_STATE', 'a consumer uses either subscribe or assign');
    }
    if (this.state === 'stopping' || this.state === 'stopped') this.checkState('running', 'assign');
    if (!Array.isArray(queues)) {
      throw new PocketMQError('INVALID_OPTION', 'assign takes an array of { topic, queueId }',
        { property: 'queues' });
    }
    const list = queues.map((mq) => checkQueue(mq));
    this.assigned = list;
    if (this.state === 'running') this.applyAssignment();
  }

  async start(): Promise<void> {
    if (this.state === 'running') return;
    this.checkState('created', 'start');
    this.broker.checkOpen();
    if (this.assigned !== null) {
      this.state = 'running';
      this.applyAssignment();
    } else {
      // Join first: a join refused (mixed message models) leaves the consumer 'created'.
      this.join();
      this.state = 'running';
      await this.rebalancer.idle();
    }
  }

  /**
   * Up to `pullBatchSize` messages from the owned queues (taking turns between queues), waiting
   * up to `timeoutMs` for the first. Resolves [] on timeout or after shutdown.
   */
  async poll(timeoutMs = 5000): Promise<MessageExt[]> {
    if (this.state === 'created') await this.start();
    if (this.state !== 'running') return [];
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0) {
      throw new PocketMQError('INVALID_OPTION', 'poll timeoutMs must be an integer >= 0',
        { property: 'timeoutMs' });
    }
    if (this.options.autoCommit) this.commitPositions();
    const deadline = this.clock.now() + Math.min(timeoutMs, MAX_POLL_TIMEOUT_MS);
    for (;;) {
      // A shutdown that began while this poll waited has committed already: read nothing more.
      if (this.state !== 'running') return [];
      const messages = this.collect();
      if (messages.length > 0) {
        if (this.tracer !== null) {
          // An assigned consumer never joins a group: its instance name stands for it.
          this.tracer.pulled(messages, this.options.group,
            this.clientId === '' ? this.options.instanceName : this.clientId);
        }
        return messages;
      }
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) return [];
      await this.waitForAny(remaining);
    }
  }

  /** Move a queue's position; the next poll reads from `offset`. */
  seek(mq: MessageQueue, offset: number): void {
    const position = this.ownedPosition(mq);
    const min = this.broker.minOffset(mq.topic, mq.queueId);
    const max = this.broker.maxOffset(mq.topic, mq.queueId);
    if (!Number.isSafeInteger(offset) || offset < min || offset > max) {
      throw new PocketMQError('INVALID_OPTION', `offset ${offset} is outside the queue's ` +
        `[${min}, ${max}]`, { property: 'offset', offset, topic: mq.topic });
    }
    position.offset = offset;
    this.notifyWaiters();
  }

  seekToBegin(mq: MessageQueue): void {
    this.seek(mq, this.broker.minOffset(mq.topic, mq.queueId));
  }

  seekToEnd(mq: MessageQueue): void {
    this.seek(mq, this.broker.maxOffset(mq.topic, mq.queueId));
  }

  /** The next offset a poll will read from `mq`. */
  position(mq: MessageQueue): number {
    return this.ownedPosition(mq).offset;
  }

  /** The group's committed offset of `mq`, -1 if none. */
  committed(mq: MessageQueue): number {
    return this.broker.offsets.query(this.offsetGroup, mq.topic, mq.queueId);
  }

  /** Queues this instance reads now. */
  assignment(): MessageQueue[] {
    return [...this.positions.values()].map((p) => p.mq);
  }

  /** Commit every owned queue's position and write the offsets to disk. */
  async commit(): Promise<void> {
    this.commitPositions();
    await this.broker.offsets.persist();
  }

  pause(queues: readonly MessageQueue[]): void {
    for (const mq of queues) {
      const key = queueKey(checkQueue(mq));
      this.pausedKeys.add(key);
      const position = this.positions.get(key);
      if (position !== undefined) position.paused = true;
    }
  }

  resume(queues: readonly MessageQueue[]): void {
    for (const mq of queues) {
      const key = queueKey(checkQueue(mq));
      this.pausedKeys.delete(key);
      const position = this.positions.get(key);
      if (position !== undefined) position.paused = false;
    }
    this.notifyWaiters();
  }

  /**
   * Messages one by one until shutdown. Leaving the loop early (`break`, a throw) moves each
   * queue back to its first message not yet handed out, so no commit skips it.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<MessageExt> {
    let batch: MessageExt[] = [];
    let handedOut = 0;
    try {
      while (this.state === 'created' || this.state === 'running') {
        batch = await this.poll(1000);
        for (handedOut = 0; handedOut < batch.length;) yield batch[handedOut++]!;
      }
    } finally {
      this.rewind(batch.slice(handedOut));
    }
  }

  /** Commit (with autoCommit), leave the group and write offsets. Idempotent. */
  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    this.notifyWaiters();
    if (wasRunning) {
      if (this.options.autoCommit) this.commitPositions();
      if (this.assigned === null) await this.leave();
      this.positions.clear();
      await this.broker.offsets.persist();
    }
    // leave() told the store already; an assigned or never started consumer tells it here.
    if (!wasRunning || this.assigned !== null) this.release(this);
    this.state = 'stopped';
  }

  protected addQueue(mq: MessageQueue): void {
    const key = queueKey(mq);
    if (this.positions.has(key)) return;
    this.positions.set(key, { mq, offset: this.startOffsetOf(mq), committed: -1,
      paused: this.pausedKeys.has(key) });
    this.notifyWaiters();
  }

  /** Rebalanced away: with autoCommit, what polls returned from it counts as consumed. */
  protected removeQueue(mq: MessageQueue): Promise<void> {
    const key = queueKey(mq);
    const position = this.positions.get(key);
    if (position !== undefined && this.options.autoCommit) this.commitPosition(position);
    this.positions.delete(key);
    return Promise.resolve();
  }

  private applyAssignment(): void {
    const wanted = new Map((this.assigned ?? []).map((mq) => [queueKey(mq), mq]));
    for (const key of [...this.positions.keys()]) {
      if (!wanted.has(key)) this.positions.delete(key);
    }
    for (const mq of wanted.values()) this.addQueue(mq);
  }

  private ownedPosition(mq: MessageQueue): Position {
    const position = this.positions.get(queueKey(checkQueue(mq)));
    if (position === undefined) {
      throw new PocketMQError('INVALID_STATE',
        `queue ${String(mq.topic)}/${String(mq.queueId)} is not assigned to this consumer`);
    }
    return position;
  }

  private commitPositions(): void {
    for (const p of this.positions.values()) this.commitPosition(p);
  }

  private commitPosition(p: Position): void {
    if (p.offset === p.committed) return;
    this.broker.offsets.commit(this.offsetGroup, p.mq.topic, p.mq.queueId, p.offset);
    p.committed = p.offset;
  }

  /** Move queues back to the first of `unread` messages (handed out by poll, never used). */
  private rewind(unread: readonly MessageExt[]): void {
    for (const message of unread) {
      const position = this.positions.get(queueKey(message));
      if (position !== undefined && message.queueOffset < position.offset) {
        position.offset = message.queueOffset;
      }
    }
  }

  /** Read owned queues in turn until a batch is full or every queue came up empty. */
  private collect(): MessageExt[] {
    const positions = [...this.positions.values()].filter((p) => !p.paused);
    const out: MessageExt[] = [];
    const batch = this.options.pullBatchSize;
    for (let i = 0; i < positions.length && out.length < batch; i++) {
      const p = positions[(this.nextQueue + i) % positions.length]!;
      let result: FetchResult;
      try {
        result = this.broker.fetch({ topic: p.mq.topic, queueId: p.mq.queueId,
          offset: p.offset, maxMessages: batch - out.length, filter: this.filterOf(p.mq.topic) });
      } catch (err) {
        // Positions of the queues read before moved past what `out` holds: hand that out
        // now; this queue's position stays, so the next poll meets the error again.
        if (out.length === 0) throw err;
        break;
      }
      p.offset = result.nextBeginOffset;
      for (const message of result.messages) out.push(message);
    }
    this.nextQueue = positions.length === 0 ? 0 : (this.nextQueue + 1) % positions.length;
    return out;
  }

  /** Wait until a readable queue may have data, the assignment changes, or `ms` pass. */
  private async waitForAny(ms: number): Promise<void> {
    const controller = new AbortController();
    let wake: () => void = () => undefined;
    const woken = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.wakers.add(wake);
    const waits: Promise<unknown>[] = [woken];
    for (const p of this.positions.values()) {
      if (p.paused) continue;
      waits.push(this.broker.waitForMessage(p.mq.topic, p.mq.queueId, p.offset, ms,
        controller.signal));
    }
    let timer: unknown = null;
    waits.push(new Promise<void>((resolve) => {
      timer = this.clock.setTimeout(resolve, ms);
    }));
    try {
      await Promise.race(waits);
    } finally {
      controller.abort();
      this.clock.clearTimeout(timer);
      this.wakers.delete(wake);
    }
  }

  private notifyWaiters(): void {
    for (const wake of this.wakers) wake();
  }
}

function checkQueue(mq: MessageQueue): MessageQueue {
  if (mq === null || typeof mq !== 'object' || !Number.isInteger(mq.queueId) || mq.queueId < 0) {
    throw new PocketMQError('INVALID_OPTION', 'a queue is { topic, queueId >= 0 }',
      { property: 'queue' });
  }
  checkTopicName(mq.topic);
  return { topic: mq.topic, queueId: mq.queueId };
}
