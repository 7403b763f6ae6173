/**
 * Every ConsumeQueue of the store, by topic and queue id, loaded from `<dir>/consumequeue/` and
 * created on the first record of a new queue. It takes dispatched records, remembers which queues
 * got new entries this turn (for the arrival event), and publishes and flushes them together.
 *
 * After a clean close every queue's files are durable and end where the commit log's dispatch
 * did, so the open only lists them (`open` with that end): a queue is opened on first use (a
 * lookup, an append, a read, stats), with the log's start at that time applied to it (`lateMin`).
 * The open no longer opens, maps and scans each queue. What could change a queue not opened yet
 * opens them all first: a cut below that end (a log whose tail was lost since, a follower's
 * cut), and retention that deletes segments (their files below the new start must go).
 */
import path from 'node:path';
import { CorruptDataError, PocketMQError } from '../errors.js';
import type { DispatchPlacement, DispatchRequest } from './commit-log.js';
import { ConsumeQueue } from './consume-queue.js';
import type { IoBackend } from './io/backend.js';

const TOPIC_DIR = /^[A-Za-z0-9_%|-]{1,127}$/;

export class ConsumeQueueTable {
  private readonly queues = new Map<string, ConsumeQueue[]>();
  private readonly touched = new Set<ConsumeQueue>();
  /** Queues found on disk and not opened yet, by topic (see the module's comment). */
  private readonly unopened = new Map<string, Set<number>>();
  /** Every entry of a queue not opened yet points below this (see `open`). */
  private lateEnd = Number.POSITIVE_INFINITY;
  /** The highest `deleteBefore` since the open: applied to a queue opened later. */
  private lateMin = 0;
  /** Told of every queue opened on first use, once recovered (the commit log takes its end). */
  onLateOpen: ((queue: ConsumeQueue) => void) | null = null;
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
   * Find every queue on disk (names that are not topics or queue ids are ignored) and open its
   * files, changing none of them. With `durableEnd`, after a clean close (every entry is on disk
   * and points below it), each is opened on first use instead.
   */
  open(durableEnd?: number): void {
    const late = durableEnd !== undefined;
    if (late) this.lateEnd = durableEnd;
    for (const topic of this.backend.readdir(this.root)) {
      if (!TOPIC_DIR.test(topic)) continue;
      for (const name of this.backend.readdir(path.join(this.root, topic))) {
        if (!/^\d{1,5}$/.test(name)) continue;
        if (!late) {
          this.create(topic, Number(name)).open();
          continue;
        }
        // Listed now (a file where a queue's directory belongs fails the open); opened later.
        this.backend.readdir(path.join(this.root, topic, name));
        let ids = this.unopened.get(topic);
        if (ids === undefined) this.unopened.set(topic, (ids = new Set()));
        ids.add(Number(name));
      }
    }
  }

  /** After `open`: each queue opened finds where its entries end (see ConsumeQueue.recover). */
  recover(durable = false): void {
    for (const queue of this.opened()) queue.recover(durable);
  }

  /**
   * Open a queue `open` only listed, as recovery and retention would have left it, or
   * undefined when there is none. A queue that fails to open stays listed (the next use fails
   * the same way) and nothing of it is kept.
   */
  private openLate(topic: string, queueId: number): ConsumeQueue | undefined {
    const ids = this.unopened.get(topic);
    if (ids === undefined || !ids.has(queueId)) return undefined;
    const queue = this.make(topic, queueId);
    try {
      queue.load(true);
      if (this.lateMin > 0) queue.deleteBefore(this.lateMin);
    } catch (err) {
      queue.close();
      throw err;
    }
    ids.delete(queueId);
    if (ids.size === 0) this.unopened.delete(topic);
    this.register(queue);
    this.onLateOpen?.(queue);
    return queue;
  }

  /** Open every queue of `topic` not opened yet (all topics' when undefined). */
  private openAllLate(topic?: string): void {
    const topics = topic === undefined ? [...this.unopened.keys()] : [topic];
    for (const t of topics) {
      for (const id of [...(this.unopened.get(t) ?? [])]) this.openLate(t, id);
    }
  }

  /** `open`, then `recover`. */
  load(durable = false): void {
    this.open();
    this.recover(durable);
  }

  private create(topic: string, queueId: number): ConsumeQueue {
    return this.register(this.make(topic, queueId));
  }

  private make(topic: string, queueId: number): ConsumeQueue {
    return new ConsumeQueue({
      backend: this.backend, root: this.root, topic, queueId,
      entriesPerFile: this.entriesPerFile, readOnly: this.readOnly,
    });
  }

  private register(queue: ConsumeQueue): ConsumeQueue {
    let list = this.queues.get(queue.topic);
    if (list === undefined) this.queues.set(queue.topic, (list = []));
    list[queue.queueId] = queue;
    return queue;
  }

  get(topic: string, queueId: number): ConsumeQueue | undefined {
    const queue = this.listOf(topic)?.[queueId];
    if (queue !== undefined || this.unopened.size === 0) return queue;
    return this.openLate(topic, queueId);
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
    const queue = this.get(topic, queueId);
    if (queue !== undefined) return queue;
    if (this.readOnly) {
      throw new PocketMQError('STORE_READ_ONLY', 'cannot create a consume queue read-only');
    }
    return this.create(topic, queueId);
  }

  /** Topics with a queue, opened or not. */
  topics(): string[] {
    return [...new Set([...this.queues.keys(), ...this.unopened.keys()])].sort();
  }

  /** The queues of `topic`, opening those not opened yet. */
  queuesOf(topic: string): ConsumeQueue[] {
    if (this.unopened.has(topic)) this.openAllLate(topic);
    return (this.queues.get(topic) ?? []).filter((q) => q !== undefined);
  }

  /** The queue ids of `topic`, ascending, without opening any queue. */
  queueIdsOf(topic: string): number[] {
    const ids = (this.queues.get(topic) ?? []).flatMap((q) => (q === undefined ? [] : [q.queueId]));
    for (const id of this.unopened.get(topic) ?? []) ids.push(id);
    return ids.sort((a, b) => a - b);
  }

  /** Every queue, opening those not opened yet. */
  all(): ConsumeQueue[] {
    this.openAllLate();
    return this.opened();
  }

  /** The queues opened so far (those listed and not used yet are as durable as on disk). */
  opened(): ConsumeQueue[] {
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

  /** `dispatch` of a run of records of one queue appended together (see ConsumeQueue.putRun). */
  dispatchRun(topic: string, queueId: number, placed: readonly DispatchPlacement[],
    tagged: readonly { readonly tagsCode: number }[]): void {
    const queue = this.obtain(topic, queueId);
    queue.putRun(placed, tagged);
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

  /**
   * Recovery: see ConsumeQueue.truncateFrom. Queues not opened yet hold nothing at or past a cut
   * from their end on; a cut below it opens them all first (it changes them, and what it changes
   * must be flushed with the rest, before a checkpoint names a later offset).
   */
  truncateFrom(physicalOffset: number, keptDurable = false): void {
    if (physicalOffset < this.lateEnd) this.openAllLate();
    for (const queue of this.opened()) queue.truncateFrom(physicalOffset, keptDurable);
  }

  /**
   * The commit log starts at `minPhysicalOffset` (see ConsumeQueue.deleteBefore). With
   * `openAll`, after retention deleted segments, queues not opened yet are opened too (their
   * files below it go now); otherwise they take it when they open.
   */
  deleteBefore(minPhysicalOffset: number, openAll = false): void {
    this.lateMin = Math.max(this.lateMin, minPhysicalOffset);
    for (const queue of this.opened()) queue.deleteBefore(minPhysicalOffset);
    if (openAll) this.openAllLate();
  }

  /** Flush every queue opened (each publishes its own staged entries first). */
  async flush(): Promise<void> {
    await Promise.all(this.opened().map((q) => q.flush()));
  }

  close(): void {
    this.unopened.clear();
    for (const queue of this.opened()) queue.close();
  }
}
