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
import { PocketMQError, type ErrorCode, type ErrorFields } from '../errors.js';
import { limits } from '../limits.js';
import {
  encodeFrame, FrameKind, FrameReader, ProtocolError, type Frame,
} from './protocol.js';

/** How a failed request travels: enough to rebuild the PocketMQError on the other side. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly fields: Omit<ErrorFields, 'cause'>;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof PocketMQError) {
    const { topic, offset, limit, actual, property } = err;
    return { code: err.code, message: err.message,
      fields: { topic, offset, limit, actual, property, retriable: err.retriable } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'ASSERTION_FAILED', message: `owner: ${message}`, fields: {} };
}

export function fromWireError(value: unknown): PocketMQError {
  const w = (value ?? {}) as Partial<WireError>;
  const fields = (w.fields ?? {}) as ErrorFields;
  return new PocketMQError(w.code ?? 'PROTOCOL_ERROR', String(w.message ?? 'unknown failure'),
    fields);
}

/** How long a closed connection's socket may take to flush before it is destroyed. */
const CLOSE_GRACE_MS = 1000;

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
}

export interface ConnectionHandlers {
  /** A frame that is not a Result or Failure (requests, hellos, events, cancels). */
  onFrame(frame: Frame): void;
  /** The connection closed (`reason`: why, when this side closed it for a broken frame). */
  onClose(reason: string | null): void;
}

export class Connection {
  private readonly reader = new FrameReader();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private corked = false;

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
   * tick ends): a burst of sends costs one system call, not one each.
   */
  send(kind: FrameKind, id: number, value: unknown): void {
    if (this.closed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        if (!this.corked) return;
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(encodeFrame(kind, id, value));
  }

  /** A request; `signal` aborting sends a cancel (the owner aborts its side of the call). */
  request(method: string, args: readonly unknown[], signal?: AbortSignal): Promise<unknown> {
    if (this.closed) return Promise.reject(unavailable('the connection to the owner is closed'));
    if (this.pending.size >= limits.maxRequestsInFlight) {
      return Promise.reject(new PocketMQError('BUSY', `${this.pending.size} requests to the ` +
        `owner in flight; at most ${limits.maxRequestsInFlight}`));
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_fffe ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      const cancel = (): void => this.send(FrameKind.Cancel, id, null);
      // The abort listener goes when the request settles: one signal serves many requests.
      const settle = (): void => signal?.removeEventListener('abort', cancel);
      this.pending.set(id, {
        resolve: (v) => { settle(); resolve(v); },
        reject: (e) => { settle(); reject(e); },
      });
      try {
        this.send(FrameKind.Request, id, { method, args });
      } catch (err) {
        this.pending.delete(id);
        reject(err as Error);
        return;
      }
      if (signal !== undefined) {
        if (signal.aborted) cancel();
        else signal.addEventListener('abort', cancel, { once: true });
      }
    });
  }

  /** Close: with a reason when this side found the peer broke the protocol. */
  close(reason: string | null = null): void {
    if (this.closed) return;
    // What was sent goes out first (a Refused frame before the close), then the socket ends;
    // a peer that does not close its side is cut off a moment later.
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
      this.close(err instanceof ProtocolError ? err.message : String(err));
      return;
    }
    for (const frame of frames) {
      if (this.closed) return;
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
