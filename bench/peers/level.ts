/**
 * classic-level (LevelDB) as a queue: 4-byte big-endian ids as keys, so key order is id order.
 * `sync: false` (the write is in the OS's cache when it settles) or `sync: true` (LevelDB syncs
 * its log before settling). With one put in flight each put is one `put`; with more, the puts
 * of one event-loop turn go in one `batch()` (group commit, as for SQLite: classic-level runs
 * each write on libuv's 4 pool threads, so 256 separate sync puts share at most 4 syncs).
 * Read back: one iterator, `nextv(256)` at a time; what is new: `values({ gte, limit }).all()`.
 * Lookups (`query`), `sync: false`: `i` + id (u32 BE) -> key and body (`encodeRecord`), `k` +
 * key -> id (u32 BE), written in batches of 4,096 messages; each lookup is LevelDB's async `get`
 * (libuv's pool), two for a key.
 */
import type { ClassicLevel } from 'classic-level';
import {
  decodeRecord, encodeRecord, tally, TurnBatcher, type LookupHit, type Peer, type PeerLookup,
  type PeerMode, type PeerQueue,
} from './peer.js';

type Db = ClassicLevel<Buffer, Buffer>;

export async function load(): Promise<Peer> {
  const { ClassicLevel } = await import('classic-level');
  return {
    name: 'classic-level',
    modes: [{ mode: 'sync:false', durable: false }, { mode: 'sync:true', durable: true }],
    open: async (dir, mode, inFlight) => {
      const db = new ClassicLevel<Buffer, Buffer>(dir,
        { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      return new LevelQueue(db, mode, inFlight);
    },
    openLookup: async (dir) => {
      const db = new ClassicLevel<Buffer, Buffer>(dir,
        { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      return new LevelLookup(db);
    },
  };
}

function key(id: number): Buffer {
  const k = Buffer.allocUnsafe(4);
  k.writeUInt32BE(id, 0);
  return k;
}

class LevelQueue implements PeerQueue {
  private next = 0;
  private readonly options: { sync: boolean };
  private readonly batcher: TurnBatcher;

  constructor(private readonly db: Db, mode: PeerMode, private readonly inFlight: number) {
    this.options = { sync: mode.durable };
    this.batcher = new TurnBatcher((bodies) => db.batch(bodies.map((value) =>
      ({ type: 'put' as const, key: key(this.next++), value })), this.options));
  }

  put(body: Buffer): Promise<void> {
    if (this.inFlight > 1) return this.batcher.put(body);
    return this.db.put(key(this.next++), body, this.options);
  }

  async fill(body: Buffer, count: number): Promise<void> {
    for (let i = 0; i < count; i += 4096) {
      const batch = this.db.batch();
      for (let k = i; k < Math.min(count, i + 4096); k++) batch.put(key(this.next++), body);
      await batch.write();
    }
  }

  async readAll(): Promise<{ count: number; sum: number }> {
    const acc = { count: 0, sum: 0 };
    const it = this.db.iterator({ keys: false });
    try {
      for (;;) {
        const entries = await it.nextv(256);
        if (entries.length === 0) break;
        for (const [, value] of entries) tally(acc, value!.length);
      }
    } finally {
      await it.close();
    }
    return acc;
  }

  readFrom(from: number, max: number): Promise<Buffer[]> {
    return this.db.values({ gte: key(from), limit: max }).all();
  }

  async count(): Promise<number> {
    let n = 0;
    for await (const _ of this.db.keys()) n++;
    return n;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

/** Keys of the lookup store: `i` + id (u32 BE) for a message, `k` + key for its id. */
function idKey(id: number): Buffer {
  const k = Buffer.allocUnsafe(5);
  k.write('i', 0);
  k.writeUInt32BE(id, 1);
  return k;
}

function keyKey(key: string): Buffer {
  return Buffer.from(`k${key}`);
}

class LevelLookup implements PeerLookup {
  constructor(private readonly db: Db) {}

  async fill(count: number, keyOf: (i: number) => string,
    bodyOf: (i: number) => Buffer): Promise<void> {
    for (let i = 0; i < count; i += 4096) {
      const batch = this.db.batch();
      for (let k = i; k < Math.min(count, i + 4096); k++) {
        const key = keyOf(k);
        batch.put(idKey(k), encodeRecord(key, bodyOf(k)));
        batch.put(keyKey(key), idKey(k).subarray(1));
      }
      await batch.write();
    }
  }

  async byId(id: number): Promise<LookupHit | null> {
    const record = await this.db.get(idKey(id));
    return record === undefined ? null : decodeRecord(id, record);
  }

  async byKey(key: string): Promise<LookupHit | null> {
    const id = (await this.db.get(keyKey(key)))?.readUInt32BE(0);
    const record = id === undefined ? undefined : await this.db.get(idKey(id));
    return record === undefined ? null : decodeRecord(id!, record);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
