/**
 * Scenario `append`: the storage engine's append and read-back speed.
 * - pocketmq StoreEngine.putMessage, ASYNC_FLUSH and SYNC_FLUSH, 1 and 256 appends in flight,
 *   128 B and 1 KiB bodies; zero-copy read-back through the ConsumeQueue; disk bytes per message.
 * - the machine's limits in the same run: bare fdatasync (4 KiB overwrite + fdatasync, one at a
 *   time), a bare durable append (one record written + fdatasync, one at a time; with pwrite,
 *   and through a shared mapping when the mmap addon loads) and a minimal
 *   framed append loop (length + checksum + body into a buffer).
 * - lmdb (the best embedded peer): 256 puts in flight, with and without sync.
 */
import fs from 'node:fs';
import path from 'node:path';
import type * as Lmdb from 'lmdb';
import { CQ_ENTRY_BYTES } from '../lib/storage.js';
import { StoreEngine, type RecordCursor } from '../lib/internal.js';
import { checksum32 } from '../lib/store/checksum.js';
import { loadNative } from '../lib/store/io/native.js';
import {
  dirBytes, drive, Latencies, median, nowNs, row, sampleRss, startClock, type BenchContext,
  type Row,
} from './harness.js';

type LmdbOpen = typeof Lmdb.open;

const TOPIC = 'bench';
const QUEUES = 4;

interface Sizes { asyncMsgs: number; sync256Msgs: number; sync1Msgs: number; readMsgs: number }

function sizes(ctx: BenchContext, bodyBytes: number): Sizes {
  const scale = (ctx.quick ? 0.02 : 1) * (bodyBytes > 512 ? 0.25 : 1);
  return {
    asyncMsgs: Math.round(2_000_000 * scale), sync256Msgs: Math.round(1_000_000 * scale),
    sync1Msgs: ctx.quick ? 500 : 10_000, readMsgs: Math.round(2_000_000 * scale),
  };
}

async function pocketAppend(ctx: BenchContext, bodyBytes: number,
  mode: 'ASYNC_FLUSH' | 'SYNC_FLUSH', inFlight: number, count: number): Promise<Row> {
  const dir = ctx.freshDir('append');
  const store = await StoreEngine.open(dir, { flushDiskType: mode });
  const body = Buffer.alloc(bodyBytes, 0x61);
  let last = 0;
  const { seconds, lat } = await drive(count, inFlight, (i) =>
    store.putMessage({ topic: TOPIC, queueId: i % QUEUES, body }).then((r) => {
      last = r.queueOffset;
    }));
  const check = store.getMaxOffsetInQueue(TOPIC, 0) + store.getMaxOffsetInQueue(TOPIC, 1) +
    store.getMaxOffsetInQueue(TOPIC, 2) + store.getMaxOffsetInQueue(TOPIC, 3);
  // Bytes the data takes: commit log used plus one ConsumeQueue entry each (no keys: no index).
  const dataBytesPerMsg = Math.round(
    (store.commitLogMaxOffset - store.commitLogMinOffset + check * CQ_ENTRY_BYTES) / count);
  await store.close();
  // Blocks allocated on disk, segments allocated ahead of the writer included.
  const bytesPerMsg = Math.round(dirBytes(dir) / count);
  fs.rmSync(dir, { recursive: true, force: true });
  void last;
  return row({ scenario: 'append', contender: 'pocketmq', bodyBytes, mode, inFlight,
    messages: count, seconds, check, ...lat.summary(),
    extra: { dataBytesPerMsg, diskBytesPerMsg: bytesPerMsg } });
}

/**
 * ASYNC_FLUSH appends issued back to back, as a producer that does not wait for each result
 * (sendOneway, or a batch of sends): every 4096th result is awaited, the rest settle behind it.
 */
async function pocketPipelined(ctx: BenchContext, bodyBytes: number, count: number): Promise<Row> {
  const dir = ctx.freshDir('pipelined');
  const store = await StoreEngine.open(dir, { flushDiskType: 'ASYNC_FLUSH' });
  const body = Buffer.alloc(bodyBytes, 0x66);
  const t0 = startClock();
  let last: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < count; i++) {
    last = store.putMessage({ topic: TOPIC, queueId: i % QUEUES, body });
    if ((i & 4095) === 4095) await last;
  }
  await last;
  const seconds = Number(nowNs() - t0) / 1e9;
  let check = 0;
  for (let q = 0; q < QUEUES; q++) check += store.getMaxOffsetInQueue(TOPIC, q);
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'append', contender: 'pocketmq', bodyBytes, mode: 'ASYNC_FLUSH',
    inFlight: 4096, messages: count, seconds, check });
}

/** Read back through the ConsumeQueue: `visitMessages` (in place) or `getMessage` (objects). */
async function pocketReadBack(ctx: BenchContext, bodyBytes: number, count: number,
  objects: boolean): Promise<Row> {
  const dir = ctx.freshDir('read');
  const store = await StoreEngine.open(dir, { flushDiskType: 'ASYNC_FLUSH' });
  const body = Buffer.alloc(bodyBytes, 0x62);
  const batch = [];
  for (let i = 0; i < count; i++) {
    batch.push(store.putMessage({ topic: TOPIC, queueId: i % QUEUES, body }));
  }
  await Promise.all(batch);
  batch.length = 0;
  await store.flushed();
  const t0 = startClock();
  let read = 0;
  let sum = 0;
  const visit = (c: RecordCursor): void => {
    sum += c.bodyBuffer[c.bodyOffset + c.bodyLength - 1]! + c.bodyLength;
  };
  for (let q = 0; q < QUEUES; q++) {
    let offset = 0;
    for (;;) {
      const r = objects ? store.getMessage(TOPIC, q, offset, 32, true)
        : store.visitMessages(TOPIC, q, offset, 256, visit);
      if ('records' in r) {
        for (const m of r.records) sum += m.body[m.body.length - 1]! + m.body.length;
      }
      const n = 'records' in r ? r.records.length : r.count;
      if (n === 0) break;
      if ((read & 0xffff) < n) sampleRss();
      read += n;
      offset = r.nextBeginOffset;
    }
  }
  const seconds = Number(nowNs() - t0) / 1e9;
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'read-back', contender: 'pocketmq', bodyBytes,
    mode: objects ? 'getMessage' : 'visitMessages', inFlight: 1, messages: read, seconds,
    check: sum });
}

/** `count` times: `write(i)`, then an fdatasync of `fd` off the main thread, timed each. */
async function writeAndSync(fd: number, count: number,
  write: (i: number) => void): Promise<{ seconds: number; lat: Latencies }> {
  const lat = new Latencies(count);
  const fdatasync = (): Promise<void> => new Promise((resolve, reject) =>
    fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  const t0 = startClock();
  for (let i = 0; i < count; i++) {
    const t = nowNs();
    write(i);
    await fdatasync();
    lat.add(Number(nowNs() - t) / 1000);
  }
  return { seconds: Number(nowNs() - t0) / 1e9, lat };
}

async function bareFdatasync(ctx: BenchContext, count: number): Promise<Row> {
  const dir = ctx.freshDir('fsync');
  const file = path.join(dir, 'f');
  const fd = fs.openSync(file, 'w+');
  const block = Buffer.alloc(4096, 1);
  for (let i = 0; i < 256; i++) fs.writeSync(fd, block, 0, 4096, i * 4096);
  fs.fsyncSync(fd);
  const { seconds, lat } = await writeAndSync(fd, count,
    (i) => fs.writeSync(fd, block, 0, 4096, (i % 256) * 4096));
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'append', contender: 'limit: fdatasync', bodyBytes: 4096,
    mode: 'SYNC', inFlight: 1, messages: count, seconds, check: count, ...lat.summary() });
}

/**
 * What a log's durable append costs at the least: records of `recordBytes` written one after
 * another into a file zero-filled and synced beforehand (as pocketmq's segments are), each
 * followed by an fdatasync before the next. Unlike the 4 KiB overwrite above (the reference of
 * the SYNC_FLUSH target), each sync here writes back a page that the append only partly
 * changed, at a position that moves through the file.
 */
async function bareFdatasyncAppend(ctx: BenchContext, recordBytes: number,
  count: number): Promise<Row> {
  const dir = ctx.freshDir('fsync-append');
  const fd = fs.openSync(path.join(dir, 'f'), 'w+');
  const size = Math.ceil((count * recordBytes) / 4096) * 4096;
  fs.writeSync(fd, Buffer.alloc(size), 0, size, 0);
  fs.fsyncSync(fd);
  const record = Buffer.alloc(recordBytes, 1);
  const { seconds, lat } = await writeAndSync(fd, count,
    (i) => fs.writeSync(fd, record, 0, recordBytes, i * recordBytes));
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'append', contender: 'limit: fdatasync append', bodyBytes: recordBytes,
    mode: 'SYNC', inFlight: 1, messages: count, seconds, check: count, ...lat.summary() });
}

/**
 * `bareFdatasyncAppend` with the records written through a shared mapping of the file instead
 * of pwrite, as pocketmq's mmap backend writes them. The difference between the two rows is what
 * an fdatasync costs more after writes through a mapping (the kernel write-protects each page
 * it writes back, and the next write to it faults). Null without the mmap addon.
 */
async function bareFdatasyncAppendMapped(ctx: BenchContext, recordBytes: number,
  count: number): Promise<Row | null> {
  const mmap = loadNative().mmap;
  if (mmap === null) return null;
  const dir = ctx.freshDir('fsync-append-mmap');
  const fd = fs.openSync(path.join(dir, 'f'), 'w+');
  const size = Math.ceil((count * recordBytes) / 4096) * 4096;
  fs.writeSync(fd, Buffer.alloc(size), 0, size, 0);
  fs.fsyncSync(fd);
  const mapping = mmap.map(size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd);
  const record = Buffer.alloc(recordBytes, 1);
  const { seconds, lat } = await writeAndSync(fd, count,
    (i) => record.copy(mapping, i * recordBytes));
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'append', contender: 'limit: fdatasync append, mmap',
    bodyBytes: recordBytes, mode: 'SYNC', inFlight: 1, messages: count, seconds, check: count,
    ...lat.summary() });
}

/**
 * The machine's rate of making new page-cache pages for a file (zero-fill with 1 MiB writes):
 * every byte a store appends to fresh segments pays this once. Reported as records/s of
 * `recordBytes` each.
 */
async function pageCacheFill(ctx: BenchContext, recordBytes: number): Promise<Row> {
  const dir = ctx.freshDir('fill');
  const total = (ctx.quick ? 32 : 256) * 2 ** 20;
  const chunk = Buffer.alloc(2 ** 20);
  const handle = await fs.promises.open(path.join(dir, 'f'), 'w');
  const t0 = startClock();
  for (let at = 0; at < total; at += chunk.length) await handle.write(chunk, 0, chunk.length, at);
  const seconds = Number(nowNs() - t0) / 1e9;
  await handle.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'append', contender: 'limit: new page cache', bodyBytes: recordBytes,
    mode: 'zero-fill', inFlight: 1, messages: total / recordBytes, seconds,
    check: total, extra: { mbPerSec: Math.round(total / seconds / 1e6) } });
}

function framedAppend(bodyBytes: number, count: number): Row {
  const buf = Buffer.alloc(64 * 2 ** 20);
  buf.fill(0);
  const body = Buffer.alloc(bodyBytes, 0x63);
  const size = bodyBytes + 12;
  let at = 0;
  let sum = 0;
  const t0 = startClock();
  for (let i = 0; i < count; i++) {
    if (at + size > buf.length) {
      at = 0;
      sampleRss();
    }
    buf.writeUInt32LE(size, at + 4);
    buf.set(body, at + 12);
    buf.writeUInt32LE(i, at + 8);
    const c = checksum32(buf, at + 4, at + size);
    buf.writeUInt32LE(c, at);
    sum = (sum + c) >>> 0;
    at += size;
  }
  const seconds = Number(nowNs() - t0) / 1e9;
  return row({ scenario: 'append', contender: 'limit: framed append', bodyBytes, mode: 'memory',
    inFlight: 1, messages: count, seconds, check: sum });
}

/** lmdb's `open`, or null where the peer cannot load (recorded with its reason, printed). */
async function loadLmdb(ctx: BenchContext): Promise<LmdbOpen | null> {
  try {
    return (await import('lmdb')).open;
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    if (!ctx.skipped.has('lmdb')) process.stderr.write(`skipping peer lmdb: ${reason}\n`);
    ctx.skipped.set('lmdb', reason);
    return null;
  }
}

async function lmdbAppend(ctx: BenchContext, bodyBytes: number, noSync: boolean,
  count: number): Promise<Row | null> {
  const open = await loadLmdb(ctx);
  if (open === null) return null;
  const dir = ctx.freshDir('lmdb');
  const db = open({ path: dir, noSync, encoding: 'binary', keyEncoding: 'uint32' });
  const body = Buffer.alloc(bodyBytes, 0x64);
  const { seconds, lat } = await drive(count, 256, (i) => db.put(i, body));
  const check = db.getKeysCount();
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'append', contender: 'lmdb', bodyBytes,
    mode: noSync ? 'noSync' : 'sync', inFlight: 256, messages: count, seconds, check,
    ...lat.summary() });
}

/** lmdb's ordered read-back of the same data: a range scan over uint32 keys. */
async function lmdbReadBack(ctx: BenchContext, bodyBytes: number,
  count: number): Promise<Row | null> {
  const open = await loadLmdb(ctx);
  if (open === null) return null;
  const dir = ctx.freshDir('lmdb-read');
  const db = open({ path: dir, noSync: true, encoding: 'binary', keyEncoding: 'uint32' });
  const body = Buffer.alloc(bodyBytes, 0x65);
  for (let i = 0; i < count; i += 4096) {
    await db.transaction(() => {
      for (let k = i; k < Math.min(count, i + 4096); k++) void db.put(k, body);
    });
  }
  const t0 = startClock();
  let read = 0;
  let sum = 0;
  for (const { value } of db.getRange({})) {
    const v = value as Buffer;
    sum += v[v.length - 1]! + v.length;
    if ((++read & 0xffff) === 0) sampleRss();
  }
  const seconds = Number(nowNs() - t0) / 1e9;
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'read-back', contender: 'lmdb', bodyBytes, mode: 'getRange',
    inFlight: 1, messages: read, seconds, check: sum });
}

async function repeat(ctx: BenchContext,
  fn: () => Promise<Row | null> | Row | null): Promise<Row[]> {
  const rows: Row[] = [];
  for (let i = 0; i < ctx.runs; i++) {
    const r = await fn();
    if (r !== null) rows.push(r);
  }
  return rows.length === 0 ? [] : [median(rows)];
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const out: Row[] = [];
  const add = async (fn: () => Promise<Row | null> | Row | null): Promise<void> => {
    out.push(...await repeat(ctx, fn));
  };
  for (const bodyBytes of [128, 1024]) {
    const s = sizes(ctx, bodyBytes);
    await add(() => framedAppend(bodyBytes, s.asyncMsgs));
    // A record of this body on disk: header, body, topic 'bench', empty properties.
    const recordBytes = 64 + bodyBytes + 1 + TOPIC.length + 2;
    await add(() => pageCacheFill(ctx, recordBytes));
    await add(() => pocketAppend(ctx, bodyBytes, 'ASYNC_FLUSH', 256, s.asyncMsgs));
    await add(() => pocketPipelined(ctx, bodyBytes, s.asyncMsgs));
    await add(() => lmdbAppend(ctx, bodyBytes, true, s.sync256Msgs));
    await add(() => pocketAppend(ctx, bodyBytes, 'SYNC_FLUSH', 256, s.sync256Msgs));
    await add(() => lmdbAppend(ctx, bodyBytes, false, s.sync256Msgs));
    await add(() => bareFdatasync(ctx, s.sync1Msgs));
    await add(() => bareFdatasyncAppend(ctx, recordBytes, s.sync1Msgs));
    await add(() => bareFdatasyncAppendMapped(ctx, recordBytes, s.sync1Msgs));
    await add(() => pocketAppend(ctx, bodyBytes, 'SYNC_FLUSH', 1, s.sync1Msgs));
    await add(() => pocketReadBack(ctx, bodyBytes, s.readMsgs, false));
    await add(() => pocketReadBack(ctx, bodyBytes, s.readMsgs, true));
    await add(() => lmdbReadBack(ctx, bodyBytes, s.readMsgs));
  }
  return out;
}
