/**
 * lmdb as a queue: `uint32` keys in id order, binary values. `noSync` or the default sync
 * (checked here: a default put takes as long as a put plus its `flushed` promise, so it settles
 * once flushed). Puts of one event-loop turn share one transaction (lmdb's own batching).
 * Several writers (`ipc`): one environment opened in each thread or process, `noSync`; a turn's
 * puts in one `transaction` that numbers them after the last key it sees (ids in commit order
 * across writers; LMDB's write lock orders the transactions).
 * Read back: one `getRange` cursor; what is new: `getRange({ start, limit })`. Lookups
 * (`query`), `noSync`: two databases in one environment, `msg` (uint32 id -> key and body,
 * `encodeRecord`) and `key` (key -> u32 id), both written in one transaction per 4,096
 * messages; a lookup by key is two `get`s.
 */
import type * as Lmdb from 'lmdb';
import {
  decodeRecord, encodeRecord, tally, TurnBatcher, type LookupHit, type Peer, type PeerLookup,
  type PeerQueue,
} from './peer.js';

export async function load(): Promise<Peer> {
  const { open } = await import('lmdb');
  return {
    name: 'lmdb',
    modes: [{ mode: 'noSync', durable: false }, { mode: 'sync', durable: true }],
    open: async (dir, mode) => new LmdbQueue(
      open({ path: dir, noSync: !mode.durable, encoding: 'binary', keyEncoding: 'uint32' })),
    openLookup: async (dir) => new LmdbLookup(open({ path: dir, noSync: true })),
    openShared: async (dir) => new LmdbSharedQueue(
      open({ path: dir, noSync: true, encoding: 'binary', keyEncoding: 'uint32' })),
  };
}

class LmdbQueue implements PeerQueue {
  private next: number;

  /** A queue opened again continues after its last id, as an application's would. */
  constructor(private readonly db: Lmdb.RootDatabase<Buffer, number>) {
    const [last] = db.getKeys({ reverse: true, limit: 1 });
    this.next = last === undefined ? 0 : last + 1;
  }

  async put(body: Buffer): Promise<void> {
    await this.db.put(this.next++, body);
  }

  async fill(body: Buffer, count: number): Promise<void> {
    for (let i = 0; i < count; i += 4096) {
      await this.db.transaction(() => {
        for (let k = i; k < Math.min(count, i + 4096); k++) void this.db.put(this.next++, body);
      });
    }
  }

  async readAll(): Promise<{ count: number; sum: number }> {
    const acc = { count: 0, sum: 0 };
    for (const { value } of this.db.getRange({})) tally(acc, value.length);
    return acc;
  }

  readFrom(from: number, max: number): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const { value } of this.db.getRange({ start: from, limit: max })) out.push(value);
    return Promise.resolve(out);
  }

  async count(): Promise<number> {
    return this.db.getKeysCount();
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** One of several writers on one queue (`Peer.openShared`); reads as `LmdbQueue`. */
class LmdbSharedQueue extends LmdbQueue {
  private readonly batcher: TurnBatcher;

  constructor(db: Lmdb.RootDatabase<Buffer, number>) {
    super(db);
    this.batcher = new TurnBatcher((bodies) => db.transaction(() => {
      const [last] = db.getKeys({ reverse: true, limit: 1 });
      let next = last === undefined ? 0 : last + 1;
      for (const body of bodies) void db.put(next++, body);
    }));
  }

  override put(body: Buffer): Promise<void> {
    return this.batcher.put(body);
  }
}

class LmdbLookup implements PeerLookup {
  private readonly messages: Lmdb.Database<Buffer, number>;
  private readonly keys: Lmdb.Database<Buffer, string>;

  constructor(private readonly root: Lmdb.RootDatabase) {
    this.messages = root.openDB<Buffer, number>('msg',
      { encoding: 'binary', keyEncoding: 'uint32' });
    this.keys = root.openDB<Buffer, string>('key', { encoding: 'binary' });
  }

  async fill(count: number, keyOf: (i: number) => string,
    bodyOf: (i: number) => Buffer): Promise<void> {
    for (let i = 0; i < count; i += 4096) {
      await this.root.transaction(() => {
        for (let k = i; k < Math.min(count, i + 4096); k++) {
          const key = keyOf(k);
          const id = Buffer.allocUnsafe(4);
          id.writeUInt32LE(k, 0);
          void this.messages.put(k, encodeRecord(key, bodyOf(k)));
          void this.keys.put(key, id);
        }
      });
    }
  }

  byId(id: number): Promise<LookupHit | null> {
    const record = this.messages.get(id);
    return Promise.resolve(record === undefined ? null : decodeRecord(id, record));
  }

  byKey(key: string): Promise<LookupHit | null> {
    const id = this.keys.get(key)?.readUInt32LE(0);
    const record = id === undefined ? undefined : this.messages.get(id);
    return Promise.resolve(record === undefined ? null : decodeRecord(id!, record));
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
