/**
 * lmdb as a queue: `uint32` keys in id order, binary values. `noSync` or the default sync
 * (checked here: a default put takes as long as a put plus its `flushed` promise, so it settles
 * once flushed). Puts of one event-loop turn share one transaction (lmdb's own batching).
 * Read back: one `getRange` cursor.
 */
import type * as Lmdb from 'lmdb';
import { tally, type Peer, type PeerQueue } from './peer.js';

export async function load(): Promise<Peer> {
  const { open } = await import('lmdb');
  return {
    name: 'lmdb',
    modes: [{ mode: 'noSync', durable: false }, { mode: 'sync', durable: true }],
    open: async (dir, mode) => new LmdbQueue(
      open({ path: dir, noSync: !mode.durable, encoding: 'binary', keyEncoding: 'uint32' })),
  };
}

class LmdbQueue implements PeerQueue {
  private next = 0;

  constructor(private readonly db: Lmdb.RootDatabase<Buffer, number>) {}

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

  async count(): Promise<number> {
    return this.db.getKeysCount();
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
