/**
 * PullConsumer (RocketMQ's DefaultLitePullConsumer): the application asks for messages with
 * `poll(timeoutMs)` or `for await`. Queues come from `subscribe` (shared with the group's other
 * instances by rebalancing) or from `assign` (exactly the queues given). Each owned queue has a
 * position, the next offset to read; `commit` stores positions as the group's offsets, and with
 * `autoCommit` what a poll returned is committed at the next poll and at shutdown.
 *
 * A poll reads straight from the broker: nothing is prefetched, so memory stays bounded by
 * `pullBatchSize` whatever the backlog. A poll that waits, and a `for await` loop, keep the
 * process alive until they return.
 */
import { PocketMQError } from '../errors.js';
import {
  checkTopicName, type BrokerPort, type Clock, type MessageExt,
  type MessageQueue, type MessageSelector,
} from '../broker/port.js';
import { ConsumerBase } from './consumer-base.js';
import type { ResolvedPullOptions } from './consumer-options.js';
import { holdProcess } from './keep-alive.js';
import { QueueReader, type Position } from './queue-reader.js';
import { queueKey } from './rebalance.js';

/** Longest single poll wait; longer timeouts wait again. */
const MAX_POLL_TIMEOUT_MS = 2 ** 31 - 1;

export class PullConsumer extends ConsumerBase implements AsyncIterable<MessageExt> {
  private readonly positions = new Map<string, Position>();
  private assigned: MessageQueue[] | null = null;
  private readonly reader: QueueReader;
  /** Wakes every poll waiting now (several may wait at once: poll and `for await`). */
  private readonly wakers = new Set<() => void>();
  private readonly pausedKeys = new Set<string>();
  private stopping: Promise<void> | null = null;
  private readonly clock: Clock;
  /** Seeks waiting for a remote broker's queue bounds: the next poll applies them first. */
  private pendingSeeks: Promise<void>[] = [];

  /** Use `store.createPullConsumer`. */
  constructor(port: BrokerPort, private readonly options: ResolvedPullOptions,
    private readonly release: (consumer: ConsumerBase) => void) {
    super(port, options, release);
    this.clock = port.info.clock;
    this.reader = new QueueReader(port, options.pullBatchSize, (topic) => this.selectorOf(topic));
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
    if (this.state === 'running') {
      this.applyAssignment().catch((err: unknown) => this.reportError('assign', err));
    }
  }

  async start(): Promise<void> {
    if (this.state === 'running') return;
    this.checkState('created', 'start');
    this.port.checkOpen();
    if (this.assigned !== null) {
      this.state = 'running';
      await this.applyAssignment();
    } else {
      // A join refused (mixed message models) leaves the consumer 'created'.
      this.state = 'running';
      try {
        await this.join();
      } catch (err) {
        this.state = 'created';
        throw err;
      }
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
      if (this.pendingSeeks.length > 0) {
        const seeks = this.pendingSeeks;
        this.pendingSeeks = [];
        await Promise.all(seeks);
      }
      const collected = this.reader.read(this.positions.values());
      const messages = collected instanceof Promise ? await collected : collected;
      // A shutdown that began while this poll read has committed without these: hand out none.
      if (this.state !== 'running') return [];
      if (messages.length > 0) {
        if (this.port.info.tracing) {
          // An assigned consumer never joins a group: its instance name stands for it.
          this.port.reportConsumed({ group: this.options.group,
            clientId: this.clientId === '' ? this.options.instanceName : this.clientId,
            messages, outcome: 'PULLED', timestamp: this.clock.now(), durationMs: 0 });
        }
        return messages;
      }
      const remaining = deadline - this.clock.now();
      if (remaining <= 0) return [];
      const release = holdProcess();
      try {
        await this.waitForAny(remaining);
      } finally {
        release();
      }
    }
  }

  /**
   * Move a queue's position; the next poll reads from `offset`. An offset outside the queue's
   * [min, max] throws INVALID_OPTION (checked at once in process; through a remote broker the
   * check is made before the next poll reads, which then reports it).
   */
  seek(mq: MessageQueue, offset: number): void {
    const position = this.ownedPosition(mq);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new PocketMQError('INVALID_OPTION', `offset ${String(offset)} is not a queue offset`,
        { property: 'offset', topic: mq.topic });
    }
    this.seekWith(position, () => offset);
  }

  seekToBegin(mq: MessageQueue): void {
    this.seekWith(this.ownedPosition(mq), (min) => min);
  }

  seekToEnd(mq: MessageQueue): void {
    this.seekWith(this.ownedPosition(mq), (_min, max) => max);
  }

  /** Move `position` to `pick(min, max)`, checked against the queue's bounds. */
  private seekWith(position: Position, pick: (min: number, max: number) => number): void {
    const min = this.port.minOffset(position.mq);
    const max = this.port.maxOffset(position.mq);
    if (!(min instanceof Promise) && !(max instanceof Promise)) {
      position.offset = checkSeek(position.mq, pick(min, max), min, max);
      this.notifyWaiters();
      return;
    }
    const moved = Promise.all([min, max]).then(([lo, hi]) => {
      position.offset = checkSeek(position.mq, pick(lo, hi), lo, hi);
      this.notifyWaiters();
    });
    this.pendingSeeks.push(moved);
  }

  /** The next offset a poll will read from `mq`. */
  position(mq: MessageQueue): number {
    return this.ownedPosition(mq).offset;
  }

  /** The group's committed offset of `mq`, -1 if none. */
  committed(mq: MessageQueue): number {
    const offset = this.port.queryOffset(this.offsetGroup, checkQueue(mq));
    if (offset instanceof Promise) {
      offset.catch(() => undefined);
      throw new PocketMQError('NOT_SUPPORTED', 'committed() needs an in-process broker');
    }
    return offset;
  }

  /** Queues this instance reads now. */
  assignment(): MessageQueue[] {
    return [...this.positions.values()].map((p) => p.mq);
  }

  /** Commit every owned queue's position and write the offsets to disk. */
  async commit(): Promise<void> {
    this.commitPositions();
    await this.port.persistOffsets();
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
      await this.persistAtShutdown();
    }
    // leave() told the store already; an assigned or never started consumer tells it here.
    if (!wasRunning || this.assigned !== null) this.release(this);
    this.state = 'stopped';
  }

  protected async addQueue(mq: MessageQueue): Promise<void> {
    const key = queueKey(mq);
    if (this.positions.has(key)) return;
    const offset = await this.startOffsetOf(mq);
    if (this.positions.has(key)) return;
    this.positions.set(key, { mq, offset, committed: -1, paused: this.pausedKeys.has(key) });
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

  protected abandonQueue(mq: MessageQueue): void {
    this.positions.delete(queueKey(mq));
  }

  private async applyAssignment(): Promise<void> {
    const wanted = new Map((this.assigned ?? []).map((mq) => [queueKey(mq), mq]));
    for (const key of [...this.positions.keys()]) {
      if (!wanted.has(key)) this.positions.delete(key);
    }
    await Promise.all([...wanted.values()].map((mq) => this.addQueue(mq)));
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
    this.port.commitOffset(this.offsetGroup, p.mq, p.offset);
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
      waits.push(this.port.waitForMessage(p.mq, p.offset, ms, controller.signal));
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

function checkSeek(mq: MessageQueue, offset: number, min: number, max: number): number {
  if (offset < min || offset > max) {
    throw new PocketMQError('INVALID_OPTION', `offset ${offset} is outside the queue's ` +
      `[${min}, ${max}]`, { property: 'offset', offset, topic: mq.topic });
  }
  return offset;
}

function checkQueue(mq: MessageQueue): MessageQueue {
  if (mq === null || typeof mq !== 'object' || !Number.isInteger(mq.queueId) || mq.queueId < 0) {
    throw new PocketMQError('INVALID_OPTION', 'a queue is { topic, queueId >= 0 }',
      { property: 'queue' });
  }
  checkTopicName(mq.topic);
  return { topic: mq.topic, queueId: mq.queueId };
}
