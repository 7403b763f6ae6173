/**
 * The contracts every peer (a library one would use instead of pocketmq) implements: for the
 * produce, consume, e2e and recovery scenarios, append a message, load a backlog, read it back
 * in id order, read what is new since a message number (`PeerQueue`); for the query scenario,
 * find one message by its id or by its key (`PeerLookup`).
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
  /**
   * Up to `max` bodies of the messages numbered `from` on (0 is the first message put), in id
   * order: a consumer's read of what is new since its last one (e2e, recovery).
   */
  readFrom(from: number, max: number): Promise<Buffer[]>;
  count(): Promise<number>;
  close(): Promise<void>;
}

/** A message found by a lookup: its id, its key and its body. */
export interface LookupHit {
  readonly id: number;
  readonly key: string;
  readonly body: Buffer;
}

/** Messages stored by id (0, 1, 2, ...) with one key each, for the `query` scenario. */
export interface PeerLookup {
  /** Stores messages 0..count-1, message i under key `keyOf(i)` (the load; not timed). */
  fill(count: number, keyOf: (i: number) => string, bodyOf: (i: number) => Buffer):
    Promise<void>;
  /** The message with id `id`, or null. */
  byId(id: number): Promise<LookupHit | null>;
  /** The message stored under `key` (keys are unique here), or null. */
  byKey(key: string): Promise<LookupHit | null>;
  close(): Promise<void>;
}

export interface Peer {
  readonly name: string;
  readonly modes: readonly PeerMode[];
  /** `inFlight` lets a peer choose between one write per put and a write per event-loop turn. */
  open(dir: string, mode: PeerMode, inFlight: number): Promise<PeerQueue>;
  /** Opens (creating if missing) the keyed store in `dir`, in the peer's fast (async) mode. */
  openLookup(dir: string): Promise<PeerLookup>;
  /**
   * Opens the queue in `dir` as one of several writers at once, each in its own thread or
   * process with its own handle, in the peer's async mode (the `ipc` scenario). Every put is
   * given the next id of the one queue, whichever writer made it; the puts of one event-loop
   * turn share one transaction. Absent where the peer allows one opener only.
   */
  openShared?(dir: string): Promise<PeerQueue>;
}

/**
 * A message as one value for key-value peers: key length (u16 LE), key (UTF-8), body. The body
 * of a decoded record is a view into `record`, not a copy.
 */
export function encodeRecord(key: string, body: Buffer): Buffer {
  const keyBytes = Buffer.byteLength(key);
  const record = Buffer.allocUnsafe(2 + keyBytes + body.length);
  record.writeUInt16LE(keyBytes, 0);
  record.write(key, 2);
  body.copy(record, 2 + keyBytes);
  return record;
}

export function decodeRecord(id: number, record: Buffer): LookupHit {
  const keyBytes = record.readUInt16LE(0);
  return { id, key: record.toString('utf8', 2, 2 + keyBytes), body: record.subarray(2 + keyBytes) };
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

/** Each peer's module here (bench/peers/), which loads the library itself in its `load`. */
const modules: Record<string, () => Promise<{ load(): Promise<Peer> }>> = {
  'better-sqlite3': () => import('./sqlite.js'),
  lmdb: () => import('./lmdb.js'),
  'classic-level': () => import('./level.js'),
};
const loaders: Record<string, () => Promise<Peer>> = Object.fromEntries(
  Object.entries(modules).map(([name, module]) => [name, async () => (await module()).load()]));

/** The names of the peers, in the order every scenario runs them. */
export const PEER_NAMES: readonly string[] = Object.keys(loaders);

/**
 * The loader of one peer, with the bench's module for it already imported: what is left to
 * load and time is the library itself (the cold scenario).
 */
export async function peerLoader(name: string): Promise<() => Promise<Peer>> {
  const module = modules[name];
  if (module === undefined) throw new Error(`no peer ${name}; peers: ${PEER_NAMES.join(', ')}`);
  const { load } = await module();
  return load;
}

/** One peer by name (a child process's: recovery); throws where it cannot load. */
export function loadPeer(name: string): Promise<Peer> {
  const load = loaders[name];
  if (load === undefined) throw new Error(`no peer ${name}; peers: ${PEER_NAMES.join(', ')}`);
  return load();
}

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
