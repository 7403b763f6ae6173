/**
 * The owner's side of the shared write window (layout and protocol: write-window.ts): it hands
 * the window to the process's producer threads when they ask, wakes when they publish, appends
 * the hole-free prefix of READY entries each turn, skips a hole that outlives
 * `limits.writeWindowHoleMs`, and answers each send in its thread's lane.
 *
 * The records go through the store's own append path (`StoreEngine.putPrepared`): queue
 * offsets, store timestamps, checksums, SYNC_FLUSH group commit, flow control and the turn's
 * single write are the same as for a send in this thread.
 */
import type { BroadcastChannel } from 'node:worker_threads';
import { limits } from '../limits.js';
import type { Logger } from '../store/options.js';
import {
  dataView, HEADER_BYTES, MIN_RECORD_BYTES, PROPERTY_KEYS, PROPERTY_UNIQ_KEY, RECORD_MAGIC,
  type PreparedRecord,
} from '../store/record-codec.js';
import { decodeProperties } from '../store/record-decoder.js';
import type { PutResult, StoreEngine } from '../store/store-engine.js';
import { toWireError } from './connection.js';
import {
  CTL_CLOSED, CTL_HEAD, CTL_SLEEPING, CTL_TAIL, CTL_WAKE, DONE_CHECKSUM, DONE_FIELDS,
  DONE_PHYSICAL_OFFSET, DONE_QUEUE_OFFSET, DONE_SEQ, DONE_STATUS, DONE_STORE_TIMESTAMP,
  FLAG_INDEXED, HDR_INTS, HDR_LANE, HDR_LENGTH, HDR_SEQ, HDR_TAGS_CODE, isAfter, LANE_MASK,
  nextTicket, PHASE_FREE, PHASE_READY, PHASE_SKIPPED, PHASE_WRITING, phaseOf, stateOf,
  STATUS_FLUSH_DISK_TIMEOUT, STATUS_PUT_OK, ticketOf, windowChannel, WindowViews,
  type WindowMessage, type WindowShape,
  waitAsync,
} from './write-window.js';
import { monotonicMs } from '../builtins.js';

const EMPTY = Buffer.alloc(0);
let windowIds = 0;

export const DEFAULT_SHAPE: WindowShape = Object.freeze({
  entries: limits.writeWindowEntries, entryBytes: limits.writeWindowEntryBytes,
  lanes: limits.writeWindowLanes, laneSlots: limits.writeWindowLaneSlots,
});

export class WindowServer {
  private views: WindowViews | null = null;
  private readonly channel: BroadcastChannel;
  private readonly id = ++windowIds;
  private head = 0;
  private scheduled = false;
  private sleeping = false;
  private closed = false;
  /** When the head entry was first seen unwritten (a hole in the making), else -1. */
  private stuckSince = -1;
  private holeTimer: NodeJS.Timeout | null = null;
  private readonly touched = new Set<number>();
  /** Records appended through the window and holes skipped, since it opened. */
  appended = 0;
  skipped = 0;

  constructor(dir: string, private readonly engine: StoreEngine, private readonly logger: Logger,
    private readonly shape: WindowShape = DEFAULT_SHAPE,
    private readonly holeMs: number = limits.writeWindowHoleMs) {
    this.channel = windowChannel(dir);
    this.channel.onmessage = (event: unknown) => {
      const message = (event as { data?: WindowMessage }).data;
      if (message?.type === 'attach' && !this.closed) this.offer();
    };
  }

  /** Answer a thread that asks for the window (made on the first ask). */
  private offer(): void {
    if (this.views === null) {
      this.views = WindowViews.create(this.shape);
      this.sleep();
    }
    this.channel.postMessage({ type: 'window', id: this.id, sab: this.views.sab,
      shape: this.shape } satisfies WindowMessage);
  }

  /** Wait for a producer's wake-up, unless the head entry is ready already. */
  private sleep(): void {
    const v = this.views!;
    if (this.closed || this.sleeping) return;
    const seen = Atomics.load(v.ctl, CTL_WAKE);
    Atomics.store(v.ctl, CTL_SLEEPING, 1);
    if (this.headReady(v)) {
      Atomics.store(v.ctl, CTL_SLEEPING, 0);
      this.schedule();
      return;
    }
    this.sleeping = true;
    const wait = waitAsync(v.ctl, CTL_WAKE, seen);
    const woke = (): void => {
      this.sleeping = false;
      Atomics.store(v.ctl, CTL_SLEEPING, 0);
      this.schedule();
    };
    if (wait.async) void wait.value.then(woke);
    else woke();
  }

  private headReady(v: WindowViews): boolean {
    const s = Atomics.load(v.state, this.head & (this.shape.entries - 1));
    return s === stateOf(this.head, PHASE_READY);
  }

  /** Drain at the end of this turn: what the producers publish meanwhile goes with it. */
  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.closed) return;
      this.drain();
      this.sleep();
    });
  }

  /** Append the READY entries from head on; skip holes that timed out. */
  private drain(): void {
    const v = this.views!;
    const { entries } = this.shape;
    let taken = 0;
    while (taken < entries) {
      const i = this.head & (entries - 1);
      const s = Atomics.load(v.state, i);
      if (s === stateOf(this.head, PHASE_READY)) {
        this.take(v, i);
        taken++;
      } else if (!this.skip(v, i, s, false)) {
        break;
      }
    }
    Atomics.store(v.ctl, CTL_HEAD, this.head);
    for (const lane of this.touched) Atomics.notify(v.laneCursor, lane);
    this.touched.clear();
  }

  /**
   * The head entry is not READY: skip it if it is a retired entry (its writer never came
   * back), or a hole older than holeMs (or any, when `now`); false when it must be waited for.
   */
  private skip(v: WindowViews, i: number, s: number, now: boolean): boolean {
    const ticket = ticketOf(s);
    const phase = phaseOf(s);
    const mine = ticket === this.head;
    if (!this.reserved()) {
      this.stuckSince = -1; // nobody holds the head ticket yet: nothing is stuck
      return false;
    }
    if (!mine && !(phase === PHASE_SKIPPED && isAfter(this.head, ticket))) return false;
    if (mine && phase !== PHASE_FREE && phase !== PHASE_WRITING) return false;
    if (mine && !now && !this.timedOut()) return false;
    const to = mine && phase === PHASE_FREE
      ? stateOf(nextTicket(this.head, this.shape.entries), PHASE_FREE)
      : stateOf(this.head, PHASE_SKIPPED);
    if (Atomics.compareExchange(v.state, i, s, to) !== s) return true; // changed: look again
    Atomics.notify(v.state, i);
    if (mine && !now) {
      this.skipped++;
      this.logger.warn(`pocketmq: skipped write-window ticket ${this.head}: reserved by a ` +
        `thread that did not write it within ${this.holeMs} ms`);
    }
    this.head = nextTicket(this.head, 1);
    // After a hole that timed out, the head stays stuck since then: the holes a dead thread
    // left behind it (it may have reserved many tickets, each waiting for its entry) go in the
    // same pass instead of one per holeMs. Live threads wrote theirs meanwhile: a ticket whose
    // entry was free for holeMs and still is not written is another such hole.
    if (!mine || now) this.stuckSince = -1;
    return true;
  }

  /** Some thread took the head ticket (the tail is past it). */
  private reserved(): boolean {
    return isAfter(Atomics.load(this.views!.ctl, CTL_TAIL), this.head);
  }

  private timedOut(): boolean {
    const now = monotonicMs();
    if (this.stuckSince < 0) {
      this.stuckSince = now;
      this.holeTimer ??= setTimeout(() => {
        this.holeTimer = null;
        this.schedule();
      }, this.holeMs + 1).unref();
      return false;
    }
    if (now - this.stuckSince >= this.holeMs) return true;
    this.holeTimer ??= setTimeout(() => {
      this.holeTimer = null;
      this.schedule();
    }, this.holeMs - (now - this.stuckSince) + 1).unref();
    return false;
  }

  /** Copy the READY entry out, free it for its next ticket, and append the record. */
  private take(v: WindowViews, i: number): void {
    const h = i * HDR_INTS;
    const length = v.header[h + HDR_LENGTH]!;
    const tagsCode = v.header[h + HDR_TAGS_CODE]!;
    const laneAndFlags = v.header[h + HDR_LANE]!;
    const seq = v.header[h + HDR_SEQ]!;
    const lane = laneAndFlags & LANE_MASK;
    const from = i * this.shape.entryBytes;
    const bytes = length >= MIN_RECORD_BYTES && length <= this.shape.entryBytes
      ? Buffer.from(v.data.subarray(from, from + length)) : EMPTY;
    Atomics.store(v.state, i, stateOf(nextTicket(this.head, this.shape.entries), PHASE_FREE));
    Atomics.notify(v.state, i);
    this.head = nextTicket(this.head, 1);
    this.stuckSince = -1;
    let rec: PreparedRecord;
    let put: PutResult | Promise<PutResult>;
    try {
      rec = preparedFrom(bytes, tagsCode, (laneAndFlags & FLAG_INDEXED) !== 0);
      put = this.engine.putPrepared(rec);
    } catch (err) {
      put = Promise.reject(err as Error);
    }
    if (!(put instanceof Promise)) {
      this.complete(v, lane, seq, put);
      this.appended++;
      return;
    }
    put.then((r) => {
      this.complete(v, lane, seq, r);
      this.appended++;
      Atomics.notify(v.laneCursor, lane);
    }, (err: unknown) => {
      this.channel.postMessage({ type: 'failed', id: this.id, lane, seq,
        error: toWireError(err) } satisfies WindowMessage);
    });
  }

  /** Write a send's result to its lane's completion ring. */
  private complete(v: WindowViews, lane: number, seq: number, r: PutResult): void {
    if (lane >= this.shape.lanes) return;
    const cursor = Atomics.load(v.laneCursor, lane);
    const slot = (lane * this.shape.laneSlots + (cursor >>> 0) % this.shape.laneSlots) *
      DONE_FIELDS;
    const done = v.done;
    done[slot + DONE_SEQ] = seq;
    done[slot + DONE_STATUS] = r.status === 'PUT_OK' ? STATUS_PUT_OK : STATUS_FLUSH_DISK_TIMEOUT;
    done[slot + DONE_QUEUE_OFFSET] = r.queueOffset;
    done[slot + DONE_PHYSICAL_OFFSET] = r.physicalOffset;
    done[slot + DONE_STORE_TIMESTAMP] = r.storeTimestamp;
    done[slot + DONE_CHECKSUM] = r.checksum;
    Atomics.store(v.laneCursor, lane, (cursor + 1) | 0);
    this.touched.add(lane);
  }

  /**
   * Stop taking sends: what is READY is appended; every other reserved ticket is skipped, so
   * its producer sends over the socket (to the next owner) instead.
   */
  close(): void {
    if (this.closed) return;
    const v = this.views;
    if (v !== null) {
      Atomics.store(v.ctl, CTL_CLOSED, 1);
      const { entries } = this.shape;
      for (let n = 0; n < 2 * entries && this.reserved(); n++) {
        const i = this.head & (entries - 1);
        const s = Atomics.load(v.state, i);
        if (s === stateOf(this.head, PHASE_READY)) this.take(v, i);
        else if (!this.skip(v, i, s, true)) break;
      }
      for (const lane of this.touched) Atomics.notify(v.laneCursor, lane);
      this.touched.clear();
      Atomics.store(v.ctl, CTL_HEAD, this.head);
      for (let i = 0; i < this.shape.entries; i++) Atomics.notify(v.state, i);
      Atomics.add(v.ctl, CTL_WAKE, 1);
      Atomics.notify(v.ctl, CTL_WAKE);
    }
    this.closed = true;
    if (this.holeTimer !== null) clearTimeout(this.holeTimer);
    this.channel.close();
  }
}

/** The PreparedRecord of an encoded record, checked: what the append path needs of it. */
function preparedFrom(bytes: Buffer, tagsCode: number, indexed: boolean): PreparedRecord {
  const dv = dataView(bytes);
  const size = bytes.length;
  if (size < MIN_RECORD_BYTES || dv.getUint32(4, true) !== size ||
    dv.getUint32(8, true) !== RECORD_MAGIC) {
    throw new Error('a malformed record in the write window');
  }
  const queueId = dv.getUint16(16, true);
  const topicAt = HEADER_BYTES + dv.getUint32(20, true);
  const topicEnd = topicAt + 1 + (bytes[topicAt] ?? 0);
  if (topicEnd + 2 > size) throw new Error('a malformed record in the write window');
  const topic = bytes.toString('latin1', topicAt + 1, topicEnd);
  let keys: string[] | undefined;
  let uniqKey: string | undefined;
  if (indexed) {
    const props = decodeProperties(bytes, topicEnd + 2, size);
    keys = props[PROPERTY_KEYS]?.split(' ');
    uniqKey = props[PROPERTY_UNIQ_KEY];
  }
  return { input: { topic, queueId, body: EMPTY, keys, uniqKey }, size, topicBytes: EMPTY,
    propertiesBytes: null, tagsCode, encoded: bytes };
}
