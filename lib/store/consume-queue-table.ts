/**
 * Every ConsumeQueue of the store, by topic and queue id, loaded from `<dir>/consumequeue/` and
 * created on the first record of a new queue. It takes dispatched records, remembers which queues
 * got new entries this turn (for the arrival event), and publishes and flushes them together.
 */
import path from 'node:path';
import { CorruptDataError, PocketMQError } from '../errors.js';
import type { DispatchRequest } from './commit-log.js';
import { ConsumeQueue } from './consume-queue.js';
import type { IoBackend } from './io/backend.js';

const TOPIC_DIR = /^[A-Za-z0-9_%|-]{1,127}$/;

export class ConsumeQueueTable {
  private readonly queues = new Map<string, ConsumeQueue[]>();
  private readonly touched = new Set<ConsumeQueue>();
  /** The last topic looked up and its queues: most lookups are for the topic of the one before. */
  private lastTopic: string | null = null;
  private lastList: ConsumeQueue[] | undefined = undefined;

  constructor(
    private readonly backend: IoBackend,
    readonly root: string,
    readonly entriesPerFile: number,
    private readonly readOnly: boolean,
  ) {}

  /**
   * Open every queue found on disk (names that are not topics or queue ids are ignored);
   * `durable`: the last run closed cleanly (see ConsumeQueue.load).
   */
  /** Open every queue's files, changing none of them. */
  open(): void {
    for (const topic of this.backend.readdir(this.root)) {
      if (!TOPIC_DIR.test(topic)) continue;
      for (const name of this.backend.readdir(path.join(this.root, topic))) {
        if (!/^\d{1,5}$/.test(name)) continue;
        this.create(topic, Number(name)).open();
      }
    }
  }

  /** After `open`: each queue finds where its entries end (see ConsumeQueue.recover). */
  recover(durable = false): void {
    for (const queue of this.all()) queue.recover(durable);
  }

  /** `open`, then `recover`. */
  load(durable = false): void {
    this.open();
    this.recover(durable);
  }

  private create(topic: string, queueId: number): ConsumeQueue {
    let list = this.queues.get(topic);
    if (list === undefined) this.queues.set(topic, (list = []));
    const queue = new ConsumeQueue({
      backend: this.backend, root: this.root, topic, queueId,
      entriesPerFile: this.entriesPerFile, readOnly: this.readOnly,
    });
    list[queueId] = queue;
    return queue;
  }

  get(topic: string, queueId: number): ConsumeQueue | undefined {
    return this.listOf(topic)?.[queueId];
  }

  private listOf(topic: string): ConsumeQueue[] | undefined {
    if (topic === this.lastTopic) return this.lastList;
    const list = this.queues.get(topic);
    if (list !== undefined) {
      this.lastTopic = topic;
      this.lastList = list;
    }
    return list;
  }

  /** The queue, made if it does not exist yet. */
  obtain(topic: string, queueId: number): ConsumeQueue {
    const queue = this.listOf(topic)?.[queueId];
    if (queue !== undefined) return queue;
    if (this.readOnly) {
      throw new PocketMQError('STORE_READ_ONLY', 'cannot create a consume queue read-only');
    }
    return this.create(topic, queueId);
  }

  topics(): string[] {
    return [...this.queues.keys()].sort();
  }

  queuesOf(topic: string): ConsumeQueue[] {
    return (this.queues.get(topic) ?? []).filter((q) => q !== undefined);
  }

  all(): ConsumeQueue[] {
    const out: ConsumeQueue[] = [];
    for (const list of this.queues.values()) for (const q of list) if (q !== undefined) out.push(q);
    return out;
  }

  /** Allocate what a queue's next `count` entries need, before their records are written. */
  reserve(topic: string, queueId: number, queueOffset: number, count: number): void {
    this.obtain(topic, queueId).reserve(queueOffset, count);
  }

  /**
   * Recovery, before it dispatches a record again: the record's queue offset must be its queue's
   * next one (a queue that holds nothing starts anywhere: ConsumeQueue.holdsNothing). Only a
   * record re-sealed over wrong contents breaks this, and that is CORRUPT_DATA; the same gap in
   * a live append is a bug (put asserts).
   */
  checkRecovered(request: DispatchRequest): void {
    const queue = this.get(request.topic, request.queueId);
    if (queue !== undefined && !queue.holdsNothing && queue.maxOffset !== request.queueOffset) {
      throw new CorruptDataError(`record at commit-log offset ${request.physicalOffset} has ` +
        `queue offset ${request.queueOffset}, but queue ${request.topic}/${request.queueId} ` +
        `continues at ${queue.maxOffset}`, { offset: request.physicalOffset,
        topic: request.topic });
    }
  }

  dispatch(request: DispatchRequest): void {
    const queue = this.obtain(request.topic, request.queueId);
    queue.put(request.queueOffset, request.physicalOffset, request.size, request.tagsCode);
    this.touched.add(queue);
  }

  /** Commit staged entries; returns the queues that got entries since the last call. */
  publish(): ConsumeQueue[] {
    if (this.touched.size === 0) return [];
    const touched = [...this.touched];
    this.touched.clear();
    for (const queue of touched) queue.publish();
    return touched;
  }

  /** Recovery: see ConsumeQueue.truncateFrom. */
  truncateFrom(physicalOffset: number, keptDurable = false): void {
    for (const queue of this.all()) queue.truncateFrom(physicalOffset, keptDurable);
  }

  deleteBefore(minPhysicalOffset: number): void {
    for (const queue of this.all()) queue.deleteBefore(minPhysicalOffset);
  }

  /** Flush every queue (each publishes its own staged entries first). */
  async flush(): Promise<void> {
    await Promise.all(this.all().map((q) => q.flush()));
  }

  close(): void {
    for (const queue of this.all()) queue.close();
  }
}
