/**
 * The shared write window: producer threads of one process encode their records in parallel
 * into a `SharedArrayBuffer` the owner's thread appends from, in ticket order (RocketMQ's
 * concurrent write window). The owner side is window-server.ts, a producer thread's is
 * window-client.ts; this file holds the layout both read.
 *
 * Layout (Int32 and Float64 views of one SharedArrayBuffer, offsets in bytes):
 *
 *   0                 ctl: i32 x 8   magic, tail (next ticket), head (owner's next ticket),
 *                                    wake (bumped after each publish), sleeping, closed
 *   32                state: i32 x entries        ticket << 2 | phase, per entry
 *   ..                header: i32 x 4 x entries   record bytes, tag code, lane | flags, seq
 *   ..                lane taken: i32 x lanes     1 while a producer thread holds the lane
 *   ..                lane cursor: i32 x lanes    completions the owner wrote to the lane
 *   .. (8-aligned)    completions: f64 x 6 x laneSlots x lanes
 *                                    seq, status, queueOffset, physicalOffset, storeTimestamp,
 *                                    checksum
 *   ..                data: entryBytes x entries  one encoded record each
 *
 * A send takes the next ticket (`Atomics.add` on tail); ticket t owns entry t mod entries once
 * its state reads FREE(t) (the owner frees an entry when it has copied the record there out:
 * a full window makes producers wait, which is the back-pressure). The producer moves
 * FREE(t) -> WRITING(t) -> READY(t) with compare-exchange and wakes the owner; the owner takes
 * READY entries from head on, the hole-free prefix, and frees each for ticket t + entries.
 * A ticket that stays FREE or WRITING longer than `limits.writeWindowHoleMs` (its producer
 * thread died, or hangs) is skipped: FREE(t) -> FREE(t + entries), WRITING(t) -> SKIPPED(t).
 * A producer that finds its ticket skipped sends again with a new one; one that was skipped
 * while writing hands its entry on when done (SKIPPED -> FREE of the next ticket); an entry
 * whose writer never comes back stays SKIPPED and the owner skips its later tickets at once.
 * The owner answers each send in the sender's lane (its completion ring) and wakes it; a
 * failure travels as a message on the window's BroadcastChannel.
 */
import type * as WorkerThreads from 'node:worker_threads';
import { lazyBuiltin } from '../builtins.js';
import { dirIdentity } from '../store/lock-socket.js';

/** Loaded when a window opens: a plain open never loads node:worker_threads (or its streams). */
const workerThreads = lazyBuiltin<typeof WorkerThreads>('node:worker_threads');

export const WINDOW_MAGIC = 0x31574d50; // 'PMW1'

export const CTL_MAGIC = 0;
export const CTL_TAIL = 1;
export const CTL_HEAD = 2;
export const CTL_WAKE = 3;
export const CTL_SLEEPING = 4;
export const CTL_CLOSED = 5;
const CTL_INTS = 8;

export const PHASE_FREE = 0;
export const PHASE_WRITING = 1;
export const PHASE_READY = 2;
export const PHASE_SKIPPED = 3;

/** Tickets are compared modulo 2^29 (they share an i32 with the phase). */
const TICKET_MASK = 0x1fff_ffff;
const TICKET_HALF = 0x1000_0000;

/** Header i32 fields of an entry. */
export const HDR_LENGTH = 0;
export const HDR_TAGS_CODE = 1;
export const HDR_LANE = 2;
export const HDR_SEQ = 3;
export const HDR_INTS = 4;
/** HDR_LANE flag: the record has keys or a unique key to index. */
export const FLAG_INDEXED = 0x1_0000;
export const LANE_MASK = 0xffff;

/** Completion f64 fields. */
export const DONE_SEQ = 0;
export const DONE_STATUS = 1;
export const DONE_QUEUE_OFFSET = 2;
export const DONE_PHYSICAL_OFFSET = 3;
export const DONE_STORE_TIMESTAMP = 4;
export const DONE_CHECKSUM = 5;
export const DONE_FIELDS = 6;
/** DONE_STATUS values. */
export const STATUS_PUT_OK = 1;
export const STATUS_FLUSH_DISK_TIMEOUT = 2;

export interface WindowShape {
  /** Entries (a power of two). */
  readonly entries: number;
  /** Largest encoded record an entry takes (larger ones go over the socket). */
  readonly entryBytes: number;
  /** Producer threads that may attach at once. */
  readonly lanes: number;
  /** Sends one producer thread may have in the window at once (its completion ring). */
  readonly laneSlots: number;
}

export function stateOf(ticket: number, phase: number): number {
  return ((ticket & TICKET_MASK) << 2) | phase;
}

export function ticketOf(state: number): number {
  return state >>> 2;
}

export function phaseOf(state: number): number {
  return state & 3;
}

export function nextTicket(ticket: number, by: number): number {
  return (ticket + by) & TICKET_MASK;
}

/** Ticket `a` comes after ticket `b`. */
export function isAfter(a: number, b: number): boolean {
  const d = (a - b) & TICKET_MASK;
  return d !== 0 && d < TICKET_HALF;
}

/** The views of one window's memory. */
export class WindowViews {
  readonly ctl: Int32Array;
  readonly state: Int32Array;
  readonly header: Int32Array;
  readonly laneTaken: Int32Array;
  readonly laneCursor: Int32Array;
  readonly done: Float64Array;
  readonly data: Buffer;
  readonly dv: DataView;

  constructor(readonly sab: SharedArrayBuffer, readonly shape: WindowShape) {
    const { entries, entryBytes, lanes, laneSlots } = shape;
    if (entries <= 0 || (entries & (entries - 1)) !== 0 || entries > TICKET_HALF / 2) {
      throw new RangeError('window entries must be a power of two');
    }
    let at = 0;
    const ints = (n: number): Int32Array => {
      const view = new Int32Array(sab, at, n);
      at += n * 4;
      return view;
    };
    this.ctl = ints(CTL_INTS);
    this.state = ints(entries);
    this.header = ints(entries * HDR_INTS);
    this.laneTaken = ints(lanes);
    this.laneCursor = ints(lanes);
    at = Math.ceil(at / 8) * 8;
    this.done = new Float64Array(sab, at, lanes * laneSlots * DONE_FIELDS);
    at += this.done.byteLength;
    this.data = Buffer.from(sab, at, entries * entryBytes);
    this.dv = new DataView(sab, at, entries * entryBytes);
  }

  static bytes(shape: WindowShape): number {
    const ints = 8 + shape.entries * (1 + HDR_INTS) + 2 * shape.lanes;
    return Math.ceil(ints * 4 / 8) * 8 + shape.lanes * shape.laneSlots * DONE_FIELDS * 8 +
      shape.entries * shape.entryBytes;
  }

  /** A new window: every entry free for its first ticket. */
  static create(shape: WindowShape): WindowViews {
    const views = new WindowViews(new SharedArrayBuffer(WindowViews.bytes(shape)), shape);
    for (let i = 0; i < shape.entries; i++) views.state[i] = stateOf(i, PHASE_FREE);
    Atomics.store(views.ctl, CTL_MAGIC, WINDOW_MAGIC);
    return views;
  }
}

/** Messages on a window's BroadcastChannel. */
export type WindowMessage =
  | { readonly type: 'attach' }
  | { readonly type: 'window'; readonly id: number; readonly sab: SharedArrayBuffer;
    readonly shape: WindowShape }
  | { readonly type: 'failed'; readonly id: number; readonly lane: number; readonly seq: number;
    readonly error: unknown };

/**
 * The channel the threads of one process meet on for `dir`'s window (a BroadcastChannel only
 * reaches threads of the same process). It never keeps a thread alive by itself.
 */
export function windowChannel(dir: string): WorkerThreads.BroadcastChannel {
  const { dev, ino } = dirIdentity(dir);
  const channel = new (workerThreads().BroadcastChannel)(`pocketmq-write-window:${dev}:${ino}`);
  channel.unref();
  return channel;
}

type WaitResult = { async: false; value: 'not-equal' | 'timed-out' } |
  { async: true; value: Promise<'ok' | 'timed-out'> };

/** `Atomics.waitAsync` (Node 16 on; TypeScript's ES2022 library does not declare it yet). */
export function waitAsync(array: Int32Array, index: number, value: number,
  timeoutMs?: number): WaitResult {
  return (Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number, t?: number): WaitResult;
  }).waitAsync(array, index, value, timeoutMs);
}
