/**
 * A producer thread's side of the shared write window (layout and protocol: write-window.ts):
 * a client thread of an owner in the same process encodes each plain send's record here, in
 * parallel with the other threads, and publishes it for the owner to append; the owner answers
 * in this thread's lane. The record is built by the broker's own code (`toRecord`: compression
 * and its flag) and the store's (`prepareRecord`: validation, properties, tag code), as for a
 * send in the owner's thread.
 */
import type { BroadcastChannel } from 'node:worker_threads';
import { receipt, toRecord } from '../broker/send.js';
import type { SendRequest, SendResult } from '../broker/port.js';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import { encodeRecord, prepareRecord, type PreparedRecord } from '../store/record-codec.js';
import { fromWireError, unavailable } from './connection.js';
import {
  CTL_CLOSED, CTL_MAGIC, CTL_SLEEPING, CTL_TAIL, CTL_WAKE, DONE_CHECKSUM, DONE_FIELDS,
  DONE_PHYSICAL_OFFSET, DONE_QUEUE_OFFSET, DONE_SEQ, DONE_STATUS, DONE_STORE_TIMESTAMP,
  FLAG_INDEXED, HDR_INTS, HDR_LANE, HDR_LENGTH, HDR_SEQ, HDR_TAGS_CODE, isAfter, nextTicket,
  PHASE_FREE, PHASE_SKIPPED, PHASE_WRITING, PHASE_READY, phaseOf, stateOf,
  STATUS_PUT_OK, ticketOf, WINDOW_MAGIC, windowChannel, WindowViews, type WindowMessage,
  waitAsync,
} from './write-window.js';

/** Tickets one send takes at most before it gives up (each skip is a hole timed out). */
const MAX_TICKETS = 4;

interface Pending {
  readonly topic: string;
  readonly queueId: number;
  readonly resolve: (r: SendResult) => void;
  readonly reject: (err: Error) => void;
}

export class WindowClient {
  private readonly pending = new Map<number, Pending>();
  private readonly room: (() => void)[] = [];
  private nextSeq = 1;
  private read = 0;
  private listening = false;
  private closed = false;

  private constructor(private readonly v: WindowViews, private readonly id: number,
    private readonly lane: number, private readonly channel: BroadcastChannel,
    private readonly maxMessageSize: number) {
    channel.onmessage = (event: unknown) => {
      const m = (event as { data?: WindowMessage }).data;
      if (m?.type === 'failed' && m.id === this.id && m.lane === this.lane) {
        this.settle(m.seq, null, fromWireError(m.error));
      }
    };
  }

  /**
   * The window of the owner of `dir`, when that owner is a thread of this process and offers
   * one within `limits.writeWindowAttachMs`; else null (sends go over the socket).
   */
  static attach(dir: string, maxMessageSize: number): Promise<WindowClient | null> {
    const channel = windowChannel(dir);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), limits.writeWindowAttachMs);
      const done = (client: WindowClient | null): void => {
        clearTimeout(timer);
        if (client === null) channel.close();
        resolve(client);
      };
      channel.onmessage = (event: unknown) => {
        const m = (event as { data?: WindowMessage }).data;
        if (m?.type !== 'window') return;
        const v = new WindowViews(m.sab, m.shape);
        if (Atomics.load(v.ctl, CTL_MAGIC) !== WINDOW_MAGIC || Atomics.load(v.ctl, CTL_CLOSED)) {
          done(null);
          return;
        }
        let lane = 0;
        while (lane < m.shape.lanes && Atomics.compareExchange(v.laneTaken, lane, 0, 1) !== 0) {
          lane++;
        }
        done(lane < m.shape.lanes
          ? new WindowClient(v, m.id, lane, channel, maxMessageSize) : null);
      };
      channel.postMessage({ type: 'attach' } satisfies WindowMessage);
    });
  }

  get isOpen(): boolean {
    return !this.closed && Atomics.load(this.v.ctl, CTL_CLOSED) === 0;
  }

  /**
   * Send through the window; null when this send cannot go that way (the window closed, or
   * the record is larger than an entry): send it over the socket.
   */
  send(request: SendRequest): Promise<SendResult> | null {
    if (!this.isOpen) return null;
    const { message, queueId } = request;
    // The broker's record for the message, checked and encoded as the owner would.
    const input = { ...toRecord(message, queueId, request.compressOver),
      bornTimestamp: Date.now() };
    const rec = prepareRecord(input, this.maxMessageSize);
    if (rec.size > this.v.shape.entryBytes) return null;
    return new Promise<SendResult>((resolve, reject) => {
      const seq = this.nextSeq;
      this.nextSeq = this.nextSeq >= 0x3fff_ffff ? 1 : this.nextSeq + 1;
      this.pending.set(seq, { topic: message.topic, queueId, resolve, reject });
      this.place(rec, seq).catch((err: unknown) => this.settle(seq, null, err as Error));
    });
  }

  /** Reserve an entry, write the record, publish it; again with a new ticket if skipped. */
  private async place(rec: PreparedRecord, seq: number): Promise<void> {
    while (this.pending.size > this.v.shape.laneSlots) {
      await new Promise<void>((resolve) => this.room.push(resolve));
    }
    const v = this.v;
    for (let tries = 0; tries < MAX_TICKETS; tries++) {
      if (!this.isOpen) break;
      const ticket = Atomics.add(v.ctl, CTL_TAIL, 1);
      const i = ticket & (v.shape.entries - 1);
      if (!await this.claim(ticket, i)) continue;
      const at = i * v.shape.entryBytes;
      encodeRecord(v.data, v.dv, at, rec, 0, 0, rec.input.bornTimestamp!, false);
      const h = i * HDR_INTS;
      const indexed = rec.input.keys !== undefined || rec.input.uniqKey !== undefined;
      v.header[h + HDR_LENGTH] = rec.size;
      v.header[h + HDR_TAGS_CODE] = rec.tagsCode;
      v.header[h + HDR_LANE] = this.lane | (indexed ? FLAG_INDEXED : 0);
      v.header[h + HDR_SEQ] = seq;
      const writing = stateOf(ticket, PHASE_WRITING);
      if (Atomics.compareExchange(v.state, i, writing, stateOf(ticket, PHASE_READY)) ===
        writing) {
        this.listen();
        Atomics.add(v.ctl, CTL_WAKE, 1);
        if (Atomics.load(v.ctl, CTL_SLEEPING) !== 0) Atomics.notify(v.ctl, CTL_WAKE);
        return;
      }
      this.handOn(i);
    }
    throw unavailable('the owner\'s write window is closed, or skipped this send');
  }

  /** Wait until entry `i` is free for `ticket` and take it; false when the ticket was skipped. */
  private async claim(ticket: number, i: number): Promise<boolean> {
    const v = this.v;
    const free = stateOf(ticket, PHASE_FREE);
    for (;;) {
      const s = Atomics.load(v.state, i);
      if (s === free) {
        if (Atomics.compareExchange(v.state, i, free, stateOf(ticket, PHASE_WRITING)) === free) {
          return true;
        }
        continue;
      }
      const t = ticketOf(s);
      if (t === nextTicket(ticket, 0) ? phaseOf(s) === PHASE_SKIPPED : isAfter(t, ticket)) {
        return false;
      }
      if (!this.isOpen) return false;
      const wait = waitAsync(v.state, i, s, limits.writeWindowHoleMs);
      if (wait.async) await wait.value;
    }
  }

  /**
   * The owner skipped this entry while the record was being written: hand it on to the
   * ticket after the last one skipped on it.
   */
  private handOn(i: number): void {
    const v = this.v;
    for (;;) {
      const s = Atomics.load(v.state, i);
      if (phaseOf(s) !== PHASE_SKIPPED) return;
      const to = stateOf(nextTicket(ticketOf(s), v.shape.entries), PHASE_FREE);
      if (Atomics.compareExchange(v.state, i, s, to) === s) {
        Atomics.notify(v.state, i);
        return;
      }
    }
  }

  /** Read this lane's completions while sends are pending. */
  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    const v = this.v;
    const loop = (): void => {
      this.drain();
      if (this.pending.size === 0 || this.closed) {
        this.listening = false;
        return;
      }
      const wait = waitAsync(v.laneCursor, this.lane, this.read, limits.writeWindowHoleMs);
      if (wait.async) void wait.value.then(loop);
      else queueMicrotask(loop);
    };
    loop();
  }

  private drain(): void {
    const v = this.v;
    const { laneSlots } = v.shape;
    const end = Atomics.load(v.laneCursor, this.lane);
    while (this.read !== end) {
      const slot = (this.lane * laneSlots + (this.read >>> 0) % laneSlots) * DONE_FIELDS;
      const d = v.done;
      this.settle(d[slot + DONE_SEQ]!, {
        status: d[slot + DONE_STATUS] === STATUS_PUT_OK ? 'PUT_OK' : 'FLUSH_DISK_TIMEOUT',
        queueOffset: d[slot + DONE_QUEUE_OFFSET]!,
        physicalOffset: d[slot + DONE_PHYSICAL_OFFSET]!,
        storeTimestamp: d[slot + DONE_STORE_TIMESTAMP]!, checksum: d[slot + DONE_CHECKSUM]!,
        size: 0,
      }, null);
      this.read = (this.read + 1) | 0;
    }
  }

  private settle(seq: number, r: Parameters<typeof receipt>[2] | null, err: Error | null): void {
    const p = this.pending.get(seq);
    if (p === undefined) return;
    this.pending.delete(seq);
    this.room.shift()?.();
    if (r !== null) p.resolve(receipt(p.topic, p.queueId, r));
    else p.reject(err ?? new PocketMQError('OWNER_UNAVAILABLE', 'send failed'));
  }

  /**
   * Stop using the window (the connection to the owner closed, or this store did): pending
   * sends reject with OWNER_UNAVAILABLE (retriable; the owner may have stored them). The lane
   * is given back when nothing is pending, else kept (an answer may still come).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const orphans = [...this.pending.keys()];
    const clean = orphans.length === 0;
    for (const seq of orphans) {
      this.settle(seq, null, unavailable('the owner went away before it answered'));
    }
    for (const wake of this.room.splice(0)) wake();
    if (clean) Atomics.store(this.v.laneTaken, this.lane, 0);
    this.channel.close();
  }
}
