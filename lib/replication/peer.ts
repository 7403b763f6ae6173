/**
 * One end of a replication connection, master's or follower's: frames in (a FrameDecoder that
 * a malformed frame ends), frames out (with back-pressure), the heartbeat and the idle timeout,
 * and one close. The roles (master-connection.ts, follower.ts) handle the frames.
 *
 * Frames are handled one at a time, in order: `handle` may be async (applying records), and
 * reading pauses while more than limits.replicationReceiveBufferBytes wait behind it.
 */
import type { Duplex } from 'node:stream';
import { limits } from '../limits.js';
import type { Clock, TimerHandle } from '../store/clock.js';
import { FrameDecoder, type Frame } from './protocol.js';

export interface PeerHandler {
  /** One frame; a throw (or rejection) closes the connection with that reason. */
  handle(frame: Frame): void | Promise<void>;
  /** Every heartbeatMs: send something if nothing went out since the last tick. */
  heartbeat(): void;
  /** All buffered frames are handled (a point to acknowledge at). */
  drained?(): void | Promise<void>;
  /** The connection ended (once), with the reason. */
  closed(reason: string): void;
}

export class Peer {
  readonly decoder: FrameDecoder;
  private handler: PeerHandler | null = null;
  private processing = false;
  /** Bytes arrived since the frame loop last looked. */
  private arrived = false;
  private lastReceived: number;
  private sentSinceTick = false;
  private timer: TimerHandle | null = null;
  private ended = false;
  private idle: Promise<void> = Promise.resolve();
  private settleIdle: () => void = () => undefined;

  constructor(readonly socket: Duplex, private readonly clock: Clock, maxFrameBytes: number,
    readonly remote: string) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.lastReceived = clock.now();
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', (err: Error) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('connection closed by the peer'));
    socket.on('end', () => this.close('connection closed by the peer'));
    socket.on('drain', () => this.onDrain?.());
    this.arm();
  }

  /** Called when the socket's send buffer drained (master: ship more). */
  onDrain: (() => void) | null = null;

  start(handler: PeerHandler): void {
    this.handler = handler;
    void this.process();
  }

  get isClosed(): boolean {
    return this.ended;
  }

  /** Resolves once no frame is being handled (after close: once the last one ended). */
  whenIdle(): Promise<void> {
    return this.idle;
  }

  /** Send frames (each a buffer or header and body parts); false when the buffer is full. */
  send(...parts: Buffer[]): boolean {
    if (this.ended) return false;
    this.sentSinceTick = true;
    let ok = true;
    if (parts.length > 1) this.socket.cork();
    for (const p of parts) ok = this.socket.write(p);
    if (parts.length > 1) this.socket.uncork();
    return ok;
  }

  get sendBuffered(): number {
    return (this.socket as { writableLength?: number }).writableLength ?? 0;
  }

  /** End the connection (idempotent); the handler hears `closed` once. */
  close(reason: string): void {
    this.finish(reason, false);
  }

  /** `close`, after what was sent so far reaches the peer (a REFUSED frame). */
  closeAfterSend(reason: string): void {
    this.finish(reason, true);
  }

  private finish(reason: string, gently: boolean): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    if (gently) this.socket.end(() => this.socket.destroy());
    else this.socket.destroy();
    this.handler?.closed(reason);
  }

  private received(chunk: Buffer): void {
    if (this.ended) return;
    this.lastReceived = this.clock.now();
    this.decoder.push(chunk);
    this.arrived = true;
    if (this.decoder.bufferedBytes > limits.replicationReceiveBufferBytes) this.socket.pause();
    void this.process();
  }

  private async process(): Promise<void> {
    if (this.processing || this.handler === null) return;
    this.processing = true;
    this.idle = new Promise((resolve) => { this.settleIdle = resolve; });
    try {
      do {
        this.arrived = false;
        let handled = false;
        for (let frame = this.decoder.next(); frame !== null && !this.ended;
          frame = this.decoder.next()) {
          handled = true;
          const done = this.handler.handle(frame);
          if (done instanceof Promise) await done;
          if (this.decoder.bufferedBytes <= limits.replicationReceiveBufferBytes / 2) {
            this.socket.resume();
          }
        }
        if (handled && !this.ended) {
          const drained = this.handler.drained?.();
          if (drained instanceof Promise) await drained;
        }
        // Bytes that arrived while a frame was applied are looked at again.
      } while (this.arrived && !this.ended);
    } catch (err) {
      this.close(err instanceof Error ? err.message : String(err));
    } finally {
      this.processing = false;
      this.socket.resume();
      this.settleIdle();
    }
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(() => this.tick(), limits.replicationHeartbeatMs);
  }

  private tick(): void {
    this.timer = null;
    if (this.ended) return;
    if (this.clock.now() - this.lastReceived > limits.replicationIdleTimeoutMs) {
      this.close(`nothing received for ${limits.replicationIdleTimeoutMs} ms`);
      return;
    }
    if (!this.sentSinceTick) {
      try {
        this.handler?.heartbeat();
      } catch (err) {
        this.close(err instanceof Error ? err.message : String(err));
        return;
      }
    }
    this.sentSinceTick = false;
    this.arm();
  }
}
