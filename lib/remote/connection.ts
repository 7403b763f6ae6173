/**
 * One end of a connection on the owner's socket: frames in and out (protocol.ts), requests
 * matched to their results, cancels, events. Both the owner (server.ts) and a client
 * (remote-port.ts) use it.
 *
 * A frame that breaks the protocol closes the connection, with the reason logged. When a
 * connection closes, every request still waiting rejects with OWNER_UNAVAILABLE, which is
 * retriable: nothing waits forever, and a producer's retry rides over an owner's hand-over.
 */
import type net from 'node:net';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { SendRequest } from '../broker/port.js';
import {
  encodeFrame, FrameKind, FrameReader, HEADER_BYTES, ProtocolError, sealBinaryFrame,
  type Frame,
} from './protocol.js';
import {
  binaryResult, binarySend, encodeSendResults, encodeSends, type SendEntry, type SendOutcome,
} from './send-codec.js';
import { fromWireError, type WireError } from './wire-error.js';

export { fromWireError, toWireError, type WireError } from './wire-error.js';

/** How long a closed connection's socket may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 1000;
/** Most send results answered in one SendResults frame. */
const MAX_RESULTS_PER_FRAME = 4096;

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
}

export interface ConnectionHandlers {
  /** A frame that is not a Result or Failure (requests, hellos, events, cancels). */
  onFrame(frame: Frame): void;
  /** The connection closed (`reason`: why, when this side closed it for a broken frame). */
  onClose(reason: string | null): void;
  /** The peer's bytes broke the protocol; the connection closes after this returns. */
  onBroken?(reason: string): void;
}

export class Connection {
  private readonly reader = new FrameReader();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private corked = false;
  /** Sends waiting for this tick's Sends frame, and their payload bytes. */
  private sends: SendEntry[] = [];
  private sendBytes = 0;
  /** Send outcomes waiting for this tick's SendResults frame. */
  private results: SendOutcome[] = [];

  constructor(private readonly socket: net.Socket, private readonly handlers: ConnectionHandlers) {
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.closedBy(null));
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  /**
   * Send a frame. Frames sent in one tick go out in one write (the socket is corked until the
   * tick ends): a burst of sends costs one system call, not one each. Sends and send results
   * waiting for their batch frame go out first: frames leave in the order they were made.
   */
  send(kind: FrameKind, id: number, value: unknown): void {
    if (this.closed) return;
    this.flushBatches();
    this.write(encodeFrame(kind, id, value));
  }

  private write(frame: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        if (!this.corked) return;
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }

  /** A request; `signal` aborting sends a cancel (the owner aborts its side of the call). */
  request(method: string, args: readonly unknown[], signal?: AbortSignal): Promise<unknown> {
    return this.track((id) => {
      this.send(FrameKind.Request, id, { method, args });
      if (signal === undefined) return undefined;
      const cancel = (): void => this.send(FrameKind.Cancel, id, null);
      if (signal.aborted) cancel();
      else signal.addEventListener('abort', cancel, { once: true });
      // The abort listener goes when the request settles: one signal serves many requests.
      return () => signal.removeEventListener('abort', cancel);
    });
  }

  /**
   * A port's `send`: the sends of one tick travel in one binary Sends frame, answered by
   * SendResults frames (send-codec.ts). A request that does not fit the binary shape travels
   * as a `send` Request, as it would have.
   */
  requestSend(request: SendRequest): Promise<unknown> {
    const bytes = binarySend(request);
    if (bytes < 0) return this.request('send', [request]);
    if (HEADER_BYTES + 4 + bytes - 4 > limits.maxFrameBytes) {
      return Promise.reject(new ProtocolError(`frame of ${HEADER_BYTES + bytes} bytes; at most ` +
        `${limits.maxFrameBytes}`));
    }
    return this.track((id) => {
      if (HEADER_BYTES + 4 + this.sendBytes + bytes - 4 > limits.maxFrameBytes) this.flushSends();
      if (this.sends.length === 0) process.nextTick(() => this.flushSends());
      this.sends.push({ id, request });
      this.sendBytes += bytes;
      return undefined;
    });
  }

  /** The owner's answer to a Sends entry: in this tick's SendResults frame, or as a Result. */
  answerSend(id: number, outcome: { result: unknown } | { failure: WireError }): void {
    if (this.closed) return;
    if ('result' in outcome && binaryResult(outcome.result) < 0) {
      this.send(FrameKind.Result, id, { value: outcome.result ?? null });
      return;
    }
    if (this.results.length >= MAX_RESULTS_PER_FRAME) this.flushResults();
    if (this.results.length === 0) process.nextTick(() => this.flushResults());
    this.results.push({ id, ...outcome } as SendOutcome);
  }

  /**
   * A new request id, its answer awaited; `start` sends it and may return what to undo when
   * it settles. Refused at once when the connection is closed or has too many in flight.
   */
  private track(start: (id: number) => (() => void) | undefined): Promise<unknown> {
    if (this.closed) return Promise.reject(unavailable('the connection to the owner is closed'));
    if (this.pending.size >= limits.maxRequestsInFlight) {
      return Promise.reject(new PocketMQError('BUSY', `${this.pending.size} requests to the ` +
        `owner in flight; at most ${limits.maxRequestsInFlight}`));
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_fffe ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      let undo: (() => void) | undefined;
      this.pending.set(id, {
        resolve: (v) => { undo?.(); resolve(v); },
        reject: (e) => { undo?.(); reject(e); },
      });
      try {
        undo = start(id);
      } catch (err) {
        this.pending.delete(id);
        reject(err as Error);
      }
    });
  }

  private flushBatches(): void {
    if (this.sends.length > 0) this.flushSends();
    if (this.results.length > 0) this.flushResults();
  }

  private flushSends(): void {
    const { sends, sendBytes } = this;
    if (sends.length === 0 || this.closed) return;
    this.sends = [];
    this.sendBytes = 0;
    this.write(sealBinaryFrame(FrameKind.Sends, encodeSends(sends, sendBytes, HEADER_BYTES)));
  }

  private flushResults(): void {
    const { results } = this;
    if (results.length === 0 || this.closed) return;
    this.results = [];
    this.write(sealBinaryFrame(FrameKind.SendResults, encodeSendResults(results, HEADER_BYTES)));
  }

  /** Close: with a reason when this side found the peer broke the protocol. */
  close(reason: string | null = null): void {
    if (this.closed) return;
    // What was sent goes out first (a Refused frame before the close), then the socket ends;
    // a peer that does not close its side is cut off a moment later.
    this.flushBatches();
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.closedBy(reason);
  }

  private received(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      const reason = err instanceof ProtocolError ? err.message : String(err);
      this.handlers.onBroken?.(reason);
      this.close(reason);
      return;
    }
    for (const frame of frames) {
      if (this.closed) return;
      if (frame.kind === FrameKind.SendResults) {
        this.settle(frame.value as SendOutcome[]);
        continue;
      }
      if (frame.kind === FrameKind.Result || frame.kind === FrameKind.Failure) {
        const waiter = this.pending.get(frame.id);
        if (waiter === undefined) continue; // answered after its cancel
        this.pending.delete(frame.id);
        const value = frame.value as { value?: unknown } | null;
        if (frame.kind === FrameKind.Result) waiter.resolve(value?.value);
        else waiter.reject(fromWireError(frame.value));
        continue;
      }
      try {
        this.handlers.onFrame(frame);
      } catch (err) {
        this.close(err instanceof Error ? err.message : String(err));
      }
    }
  }

  private settle(outcomes: readonly SendOutcome[]): void {
    for (const o of outcomes) {
      const waiter = this.pending.get(o.id);
      if (waiter === undefined) continue;
      this.pending.delete(o.id);
      if ('result' in o) waiter.resolve(o.result);
      else waiter.reject(fromWireError(o.failure));
    }
  }

  private closedBy(reason: string | null): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.pending.values()) {
      waiter.reject(unavailable('the owner process went away before it answered'));
    }
    this.pending.clear();
    this.handlers.onClose(reason);
  }
}

export function unavailable(message: string): PocketMQError {
  return new PocketMQError('OWNER_UNAVAILABLE', message, { retriable: true });
}
