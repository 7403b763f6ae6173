/**
 * better-sqlite3 as a queue table: `q (id INTEGER PRIMARY KEY, topic, body BLOB)` in WAL mode,
 * `synchronous=NORMAL` (a commit survives a process crash, not power loss: the WAL is synced at
 * checkpoints) or `FULL` (the WAL is synced at every commit). With one put in flight each put is
 * its own transaction; with more, the puts of one event-loop turn share one transaction (group
 * commit, as pocketmq and lmdb do; `TurnBatcher`): better-sqlite3 is synchronous, so this is the
 * fair way to let it serve 256 waiting producers. Read back: one `SELECT ... ORDER BY id` cursor;
 * what is new: `SELECT body ... WHERE id > ? ORDER BY id LIMIT ?` on the writer's connection.
 * Several writers (`ipc`): one connection each, `busy_timeout` 10 s, a turn's puts in one
 * `BEGIN IMMEDIATE` transaction; ids are SQLite's rowids, so in commit order across writers.
 * Lookups (`query`): `m (id INTEGER PRIMARY KEY, topic, key, body BLOB)` with an index on
 * `(topic, key)` built as rows are inserted, WAL NORMAL; one prepared `SELECT` per lookup.
 */
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import {
  tally, TurnBatcher, type LookupHit, type Peer, type PeerLookup, type PeerMode, type PeerQueue,
} from './peer.js';

type Database = BetterSqlite3.Database;
const TOPIC = 'bench';
/** How long a writer sharing the file waits for the others' transactions before failing. */
const SHARED_BUSY_TIMEOUT_MS = 10_000;

export async function load(): Promise<Peer> {
  const Database = (await import('better-sqlite3')).default;
  new Database(':memory:').close(); // loads the native addon now, so a broken build is skipped
  return {
    name: 'better-sqlite3',
    modes: [{ mode: 'WAL NORMAL', durable: false }, { mode: 'WAL FULL', durable: true }],
    open: async (dir, mode, inFlight) =>
      new SqliteQueue(new Database(path.join(dir, 'queue.db')), mode, inFlight),
    openLookup: async (dir) => new SqliteLookup(new Database(path.join(dir, 'messages.db'))),
    openShared: async (dir) => new SqliteQueue(new Database(path.join(dir, 'queue.db')),
      { mode: 'WAL NORMAL', durable: false }, 256, true),
  };
}

class SqliteQueue implements PeerQueue {
  private readonly insert: BetterSqlite3.Statement<[string, Buffer]>;
  private readonly insertMany: BetterSqlite3.Transaction<(bodies: Buffer[]) => void>;
  private readonly batcher: TurnBatcher;
  private readonly selectFrom: BetterSqlite3.Statement<[string, number, number], Buffer>;

  /** `shared`: one of several writers (threads or processes), see `Peer.openShared`. */
  constructor(private readonly db: Database, mode: PeerMode, private readonly inFlight: number,
    shared = false) {
    // A writer waits for another's transaction (SQLite's busy handler) instead of failing.
    if (shared) db.pragma(`busy_timeout = ${SHARED_BUSY_TIMEOUT_MS}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${mode.durable ? 'FULL' : 'NORMAL'}`);
    db.exec('CREATE TABLE IF NOT EXISTS q ' +
      '(id INTEGER PRIMARY KEY, topic TEXT NOT NULL, body BLOB NOT NULL)');
    this.insert = db.prepare('INSERT INTO q (topic, body) VALUES (?, ?)');
    this.insertMany = db.transaction((bodies: Buffer[]) => {
      for (const b of bodies) this.insert.run(TOPIC, b);
    });
    // BEGIN IMMEDIATE where writers share the file: the write lock is taken (or waited for)
    // at the start, never failed for at a deferred transaction's first insert.
    this.batcher = new TurnBatcher(shared ? this.insertMany.immediate : this.insertMany);
    this.selectFrom = db.prepare<[string, number, number], Buffer>(
      'SELECT body FROM q WHERE topic = ? AND id > ? ORDER BY id LIMIT ?').pluck();
  }

  put(body: Buffer): Promise<void> {
    if (this.inFlight > 1) return this.batcher.put(body);
    this.insert.run(TOPIC, body);
    return Promise.resolve();
  }

  async fill(body: Buffer, count: number): Promise<void> {
    for (let i = 0; i < count; i += 4096) {
      this.insertMany(Array.from({ length: Math.min(4096, count - i) }, () => body));
    }
  }

  async readAll(): Promise<{ count: number; sum: number }> {
    const acc = { count: 0, sum: 0 };
    const select = this.db.prepare('SELECT body FROM q WHERE topic = ? AND id > ? ORDER BY id');
    for (const body of select.pluck().iterate(TOPIC, 0)) tally(acc, (body as Buffer).length);
    return acc;
  }

  readFrom(from: number, max: number): Promise<Buffer[]> {
    // Message n has rowid n + 1 (rowids of a new table start at 1).
    return Promise.resolve(this.selectFrom.all(TOPIC, from, max));
  }

  async count(): Promise<number> {
    return this.db.prepare('SELECT count(*) FROM q').pluck().get() as number;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

class SqliteLookup implements PeerLookup {
  private readonly insert: BetterSqlite3.Statement<[number, string, string, Buffer]>;
  private readonly selectById: BetterSqlite3.Statement<[number], { key: string; body: Buffer }>;
  private readonly selectByKey: BetterSqlite3.Statement<[string, string],
    { id: number; key: string; body: Buffer }>;

  constructor(private readonly db: Database) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE IF NOT EXISTS m (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, ' +
      'key TEXT NOT NULL, body BLOB NOT NULL); ' +
      'CREATE INDEX IF NOT EXISTS m_key ON m (topic, key)');
    this.insert = db.prepare('INSERT INTO m (id, topic, key, body) VALUES (?, ?, ?, ?)');
    this.selectById = db.prepare('SELECT key, body FROM m WHERE id = ?');
    this.selectByKey = db.prepare(
      'SELECT id, key, body FROM m WHERE topic = ? AND key = ? LIMIT 1');
  }

  async fill(count: number, keyOf: (i: number) => string,
    bodyOf: (i: number) => Buffer): Promise<void> {
    const insertRange = this.db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) this.insert.run(i, TOPIC, keyOf(i), bodyOf(i));
    });
    for (let i = 0; i < count; i += 4096) insertRange(i, Math.min(count, i + 4096));
  }

  byId(id: number): Promise<LookupHit | null> {
    const r = this.selectById.get(id);
    return Promise.resolve(r === undefined ? null : { id, key: r.key, body: r.body });
  }

  byKey(key: string): Promise<LookupHit | null> {
    const r = this.selectByKey.get(TOPIC, key);
    return Promise.resolve(r === undefined ? null : { id: r.id, key: r.key, body: r.body });
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
