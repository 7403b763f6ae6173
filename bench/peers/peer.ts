/**
 * The contract every peer (a library one would use instead of pocketmq) implements for the
 * produce and consume scenarios: append a message, load a backlog, read it back in id order.
 * A peer that cannot load here (not installed, native addon not built) is skipped with its
 * reason recorded in the context, printed and written to the JSON, never silently.
 */
import { sampleRss, type BenchContext } from '../harness.js';

/** A durability mode: `durable` says whether a settled put survives power loss. */
export interface PeerMode {
  readonly mode: string;
  readonly durable: boolean;
}

export interface PeerQueue {
  /** Appends one message; settles when it is stored as durably as the mode promises. */
  put(body: Buffer): Promise<void>;
  /** Loads `count` messages as fast as the peer allows (the catch-up backlog; not timed). */
  fill(body: Buffer, count: number): Promise<void>;
  /** Reads every message in id order: how many, and the sum of their body lengths. */
  readAll(): Promise<{ count: number; sum: number }>;
  count(): Promise<number>;
  close(): Promise<void>;
}

export interface Peer {
  readonly name: string;
  readonly modes: readonly PeerMode[];
  /** `inFlight` lets a peer choose between one write per put and a write per event-loop turn. */
  open(dir: string, mode: PeerMode, inFlight: number): Promise<PeerQueue>;
}

/** Counts one message read; samples RSS every 65,536 (read loops are synchronous). */
export function tally(acc: { count: number; sum: number }, bytes: number): void {
  acc.sum += bytes;
  if ((++acc.count & 0xffff) === 0) sampleRss();
}

/**
 * Group commit for peers without their own: the puts of one event-loop turn are written by one
 * `commit` call (one transaction or batch), and each put settles when it has.
 */
export class TurnBatcher {
  private bodies: Buffer[] = [];
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];

  constructor(private readonly commit: (bodies: Buffer[]) => Promise<void> | void) {}

  put(body: Buffer): Promise<void> {
    if (this.bodies.length === 0) setImmediate(() => void this.flush());
    this.bodies.push(body);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private async flush(): Promise<void> {
    const { bodies, waiters } = this;
    this.bodies = [];
    this.waiters = [];
    try {
      await this.commit(bodies);
    } catch (err) {
      for (const w of waiters) w.reject(err);
      return;
    }
    for (const w of waiters) w.resolve();
  }
}

const loaders: Record<string, () => Promise<Peer>> = {
  'better-sqlite3': async () => (await import('./sqlite.js')).load(),
  lmdb: async () => (await import('./lmdb.js')).load(),
  'classic-level': async () => (await import('./level.js')).load(),
};

let cache: Promise<Peer[]> | null = null;

/** The peers that load here, once per process; the others go to `ctx.skipped`. */
export function loadPeers(ctx: BenchContext): Promise<Peer[]> {
  cache ??= (async () => {
    const peers: Peer[] = [];
    for (const [name, load] of Object.entries(loaders)) {
      try {
        peers.push(await load());
      } catch (err) {
        const reason = err instanceof Error ? err.message.split('\n')[0]! : String(err);
        ctx.skipped.set(name, reason);
        process.stderr.write(`skipping peer ${name}: ${reason}\n`);
      }
    }
    return peers;
  })();
  return cache;
}
