/**
 * A disk that really fills: the store on a small tmpfs of its own (mounting needs root; elsewhere
 * each test prints `skipped: <reason>` and passes). Through the public API, on both I/O backends
 * and both flush modes: sends fail with DISK_FULL, everything acknowledged before reads back byte
 * for byte, a reopen of the full store holds it all, and appends resume once space is freed,
 * without and with a reopen.
 *
 * (a) the store's own check: disk use past `diskFullRatio` (re-checked by each retention pass);
 * (b) the filesystem itself (ratios at 1): a segment, ConsumeQueue or index file that the disk
 *     cannot hold with `limits.allocationReserveBytes` to spare is refused before it is written;
 * (c) no room for the first segment of a new store;
 * (d) another writer takes the last block: no stop; the checkpoint, written in place, goes on
 *     covering new records (its retry after a failed write: retention.test.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageStore, type MessageStoreOptions } from '../lib/message-store.js';
import type { Producer } from '../lib/client/producer.js';
import { PocketMQError } from '../lib/errors.js';
import type { FlushDiskType } from '../lib/store/options.js';
import { Checkpoint } from '../lib/store/checkpoint.js';
import { FileBackend } from '../lib/store/io/file-backend.js';
import { verifyStore } from '../lib/store/verify.js';
import { until } from './support/messaging.js';
import { storeInternals } from '../lib/internal.js';

const MiB = 2 ** 20;
const TOPIC = 'full';
const BODY_BYTES = 24 * 1024;

/** Every tmpfs mounted by this file's tests, unmounted after each test whatever happened. */
const mounted: string[] = [];
const opened: MessageStore[] = [];

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close().catch(() => undefined);
  for (const dir of mounted.splice(0)) {
    try {
      execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
      // A mapping not yet garbage collected keeps the mount busy: detach it lazily.
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** A fresh tmpfs of `sizeMiB`, or why one cannot be mounted here. */
function mountTmpfs(sizeMiB: number): { dir: string } | { skipped: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m,mode=0700`, 'tmpfs', dir],
      { stdio: 'pipe' });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    const uid = process.getuid?.() ?? 'unknown';
    return { skipped: `cannot mount a tmpfs (uid ${uid}): ${stderr || String(err)}` };
  }
  mounted.push(dir);
  return { dir };
}

/** Incompressible bytes, the same for the same `i` (xorshift32 seeded by it). */
function bodyOf(i: number): Buffer {
  const out = Buffer.alloc(BODY_BYTES);
  let x = (i + 1) * 0x9e3779b1 >>> 0 || 1;
  for (let at = 0; at < out.length; at += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out.writeUInt32LE(x, at);
  }
  out.writeUInt32LE(i, 0);
  return out;
}

interface Acked {
  readonly i: number;
  readonly msgId: string;
  readonly queueOffset: number;
}

async function open(dir: string, options: MessageStoreOptions): Promise<MessageStore> {
  const store = await MessageStore.open(dir, options);
  opened.push(store);
  return store;
}

async function closeStore(store: MessageStore): Promise<void> {
  await store.close();
  opened.splice(opened.indexOf(store), 1);
}

const baseOptions = (flushDiskType: FlushDiskType, backend: 'mmap' | 'file'):
  MessageStoreOptions => ({
  flushDiskType, backend, commitLogSegmentSize: MiB, consumeQueueEntriesPerFile: 1024,
  indexHashSlots: 64, indexMaxEntries: 256, defaultTopicQueueNums: 1,
});

/** Send until a send fails, adding each acknowledged one to `acked`; it must fail DISK_FULL. */
async function sendUntilFull(producer: Producer, acked: Acked[]): Promise<void> {
  const limit = 2000;
  for (let n = 0; n < limit; n++) {
    const i = acked.length;
    let r;
    try {
      r = await producer.send({ topic: TOPIC, body: bodyOf(i), keys: [`k${i}`] });
    } catch (err) {
      expect(err).toBeInstanceOf(PocketMQError);
      expect((err as PocketMQError).code).toBe('DISK_FULL');
      return;
    }
    expect(r.status).toBe('SEND_OK');
    acked.push({ i, msgId: r.msgId, queueOffset: r.queueOffset });
  }
  throw new Error(`the disk never filled after ${limit} sends`);
}

/** Every acknowledged message, read back through `browse`: same offsets, ids and bytes. */
async function expectIntact(store: MessageStore, acked: readonly Acked[]): Promise<void> {
  const seen: { msgId: string; queueOffset: number; body: Buffer; keys: string[] }[] = [];
  let offset = 0;
  for (;;) {
    const page = await store.browse({ topic: TOPIC, queueId: 0, offset, maxNum: 500 });
    expect(page.minOffset).toBe(0);
    for (const m of page.messages) seen.push(m);
    if (page.nextOffset >= page.maxOffset) break;
    offset = page.nextOffset;
  }
  expect(seen.length).toBe(acked.length);
  acked.forEach((a, n) => {
    const m = seen[n]!;
    expect([m.queueOffset, m.msgId, m.keys]).toEqual([a.queueOffset, a.msgId, [`k${a.i}`]]);
    expect(m.body.equals(bodyOf(a.i)), `body of message ${a.i}`).toBe(true);
  });
  const last = acked.at(-1);
  if (last !== undefined) {
    const found = await store.queryMessage({ topic: TOPIC, key: `k${last.i}` });
    expect(found.map((m) => m.msgId)).toEqual([last.msgId]);
  }
}

/** Send `count` more; each must be stored. */
async function sendMore(producer: Producer, acked: Acked[], count: number): Promise<void> {
  for (let n = 0; n < count; n++) {
    const i = acked.length;
    const r = await producer.send({ topic: TOPIC, body: bodyOf(i), keys: [`k${i}`] });
    expect([r.status, r.queueOffset]).toEqual(['SEND_OK', i]);
    acked.push({ i, msgId: r.msgId, queueOffset: r.queueOffset });
  }
}

/** A healthy log after a clean close: verify finds no problem. */
async function expectVerified(dir: string, records: number): Promise<void> {
  const report = await verifyStore(dir);
  expect(report.problems).toEqual([]);
  expect(report.healthy).toBe(true);
  expect(report.records).toBe(records);
}

/** The next send is refused with DISK_FULL (nothing stored). */
async function expectRefused(producer: Producer, acked: readonly Acked[]): Promise<void> {
  await expect(producer.send({ topic: TOPIC, body: bodyOf(acked.length) }))
    .rejects.toMatchObject({ code: 'DISK_FULL' });
}

/** Reopen: every acknowledged message is there, five more are taken, and verify is clean. */
async function expectReopenWorks(dir: string, options: MessageStoreOptions,
  acked: Acked[]): Promise<void> {
  const store = await open(dir, options);
  await expectIntact(store, acked);
  await sendMore(store.createProducer({ group: 'pg' }), acked, 5);
  await closeStore(store);
  await expectVerified(dir, acked.length);
}

/** Write a file until the filesystem has not one block left; returns its path. */
function fillToLastBlock(dir: string): string {
  const filler = path.join(dir, 'everything.bin');
  const fd = fs.openSync(filler, 'w');
  try {
    for (const chunk of [MiB, 64 * 1024, 4096, 1]) {
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(chunk, 0x11));
      } catch (err) {
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  expect(fs.statfsSync(dir).bavail).toBe(0);
  return filler;
}

/** Fill a file of `bytes` on the tmpfs: what the test frees later. */
function writeFiller(dir: string, bytes: number): string {
  const filler = path.join(dir, 'filler.bin');
  fs.writeFileSync(filler, Buffer.alloc(bytes, 0xaa));
  return filler;
}

const cases = (['mmap', 'file'] as const).flatMap((backend) =>
  (['ASYNC_FLUSH', 'SYNC_FLUSH'] as const).map((flush) => ({ backend, flush })));

describe.each(cases)('a real full disk ($backend backend, $flush)', ({ backend, flush }) => {
  const base = baseOptions(flush, backend);

  it('(b) ENOSPC at segment allocation: DISK_FULL, intact, reopens full, resumes when freed',
    async () => {
      const mount = mountTmpfs(10);
      if ('skipped' in mount) {
        console.log(`skipped: ${mount.skipped}`);
        return;
      }
      const filler = writeFiller(mount.dir, 4 * MiB);
      const dir = path.join(mount.dir, 'store');
      const options = { ...base, diskFullRatio: 1, diskMaxUsedSpaceRatio: 1 };
      let store = await open(dir, options);
      await store.createTopic(TOPIC, { queueNums: 1 });
      let producer = store.createProducer({ group: 'pg' });
      const acked: Acked[] = [];
      await sendUntilFull(producer, acked);
      // Most of the 6 MiB left went to segments before an allocation was refused.
      expect(acked.length * BODY_BYTES).toBeGreaterThan(3 * MiB);
      await expectRefused(producer, acked);
      await expect(producer.sendBatch([{ topic: TOPIC, body: bodyOf(acked.length) }]))
        .rejects.toMatchObject({ code: 'DISK_FULL' });
      await expectIntact(store, acked);
      await closeStore(store);
      await expectVerified(dir, acked.length);

      store = await open(dir, options);
      await expectIntact(store, acked);
      producer = store.createProducer({ group: 'pg' });
      await expectRefused(producer, acked);

      fs.rmSync(filler);
      await sendMore(producer, acked, 20);
      await expectIntact(store, acked);
      await closeStore(store);
      await expectReopenWorks(dir, options, acked);
    });

  it('(a) disk use past diskFullRatio: DISK_FULL until retention sees space freed',
    async () => {
      const mount = mountTmpfs(24);
      if ('skipped' in mount) {
        console.log(`skipped: ${mount.skipped}`);
        return;
      }
      const filler = writeFiller(mount.dir, 8 * MiB);
      const dir = path.join(mount.dir, 'store');
      // Nothing deleted early (that would drop acknowledged messages): only the hard limit.
      const options = { ...base, diskFullRatio: 0.5, diskMaxUsedSpaceRatio: 1 };
      let store = await open(dir, options);
      await store.createTopic(TOPIC, { queueNums: 1 });
      let producer = store.createProducer({ group: 'pg' });
      const acked: Acked[] = [];
      // Retention re-checks disk use on its timer; run it after every few sends instead.
      const engine = storeInternals(store).engine;
      for (let round = 0; round < 100 && !(await engine.runRetention()).diskFull; round++) {
        await sendMore(producer, acked, 4);
      }
      const run = await storeInternals(store).engine.runRetention();
      expect(run.diskFull).toBe(true);
      expect(run.usedRatio).toBeGreaterThanOrEqual(0.5);
      await expectRefused(producer, acked);
      // The store refused while the filesystem still had room.
      const { bavail, bsize } = fs.statfsSync(mount.dir);
      expect(bavail * bsize).toBeGreaterThan(4 * MiB);
      await expectIntact(store, acked);
      await closeStore(store);
      await expectVerified(dir, acked.length);

      // A reopen may give back segments allocated ahead: top the disk up so it is still full.
      const topUp = path.join(mount.dir, 'top-up.bin');
      fs.writeFileSync(topUp, Buffer.alloc(3 * MiB, 0x55));
      store = await open(dir, options);
      expect((await storeInternals(store).engine.runRetention()).diskFull).toBe(true);
      await expectIntact(store, acked);
      producer = store.createProducer({ group: 'pg' });
      await expectRefused(producer, acked);

      fs.rmSync(filler);
      fs.rmSync(topUp);
      // Refused until retention's next pass sees the space, then accepted without a reopen.
      await expectRefused(producer, acked);
      expect((await storeInternals(store).engine.runRetention()).diskFull).toBe(false);
      await sendMore(producer, acked, 10);
      await expectIntact(store, acked);
      await closeStore(store);
      await expectReopenWorks(dir, options, acked);
    });

  it('(c) no room for the first segment: the first send fails with DISK_FULL, leaving the disk ' +
    'as it was',
    async () => {
      const mount = mountTmpfs(4);
      if ('skipped' in mount) {
        console.log(`skipped: ${mount.skipped}`);
        return;
      }
      const filler = writeFiller(mount.dir, 3 * MiB);
      const dir = path.join(mount.dir, 'store');
      const options = { ...base, diskFullRatio: 1, diskMaxUsedSpaceRatio: 1 };
      const free = (): number => {
        const s = fs.statfsSync(mount.dir);
        return s.bavail * s.bsize;
      };
      const before = free();
      // The open allocates no segment (the first append makes it, small): it succeeds.
      const store = await open(dir, options);
      const producer = store.createProducer({ group: 'pg' });
      await expect(producer.send({ topic: TOPIC, body: bodyOf(0) }))
        .rejects.toMatchObject({ code: 'DISK_FULL' });
      // A doomed allocation neither filled the disk nor left a partial segment behind.
      expect(before - free()).toBeLessThan(64 * 1024);
      const log = path.join(dir, 'commitlog');
      expect(fs.existsSync(log) ? fs.readdirSync(log) : []).toEqual([]);
      fs.rmSync(filler);
      const acked: Acked[] = [];
      await sendMore(producer, acked, 3);
      await expectIntact(store, acked);
      await closeStore(store);
      await expectVerified(dir, acked.length);
    });

  it('(d) another writer fills the disk to its last block: no stop, resumes once freed',
    async () => {
      const mount = mountTmpfs(8);
      if ('skipped' in mount) {
        console.log(`skipped: ${mount.skipped}`);
        return;
      }
      const dir = path.join(mount.dir, 'store');
      const errors: string[] = [];
      const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined,
        error: (m: string) => errors.push(m) };
      // Checkpoints every 20 ms, in place: they need no new block and go on.
      const options = { ...base, diskFullRatio: 1, diskMaxUsedSpaceRatio: 1,
        flushConsumeQueueIntervalMs: 20, logger };
      let store = await open(dir, options);
      await store.createTopic(TOPIC, { queueNums: 1 });
      let producer = store.createProducer({ group: 'pg' });
      const acked: Acked[] = [];
      await sendMore(producer, acked, 2);
      // Reopened, nothing is being written (no checkpoint due, the segment too little used to
      // allocate the next): the disk fills while the store is idle.
      await closeStore(store);
      store = await open(dir, options);
      producer = store.createProducer({ group: 'pg' });
      const covered = (): number =>
        Checkpoint.peek(new FileBackend(), dir)?.commitLogFlushedOffset ?? -1;
      const before = covered();
      const filler = fillToLastBlock(mount.dir);
      await sendMore(producer, acked, 1);
      // The checkpoint is written in place (no new block): it goes on covering new records.
      await until(() => covered() > before, 'a checkpoint written on the full disk');
      // Appends that fit the allocated segment go on; none is refused as STORE_STOPPED.
      for (let n = 0; n < 3; n++) {
        const i = acked.length;
        const r = await producer.send({ topic: TOPIC, body: bodyOf(i), keys: [`k${i}`] })
          .catch((err: unknown) => err as PocketMQError);
        if ('code' in r) expect(r.code).toBe('DISK_FULL');
        else acked.push({ i, msgId: r.msgId, queueOffset: r.queueOffset });
      }
      await expectIntact(store, acked);
      fs.rmSync(filler);
      await sendMore(producer, acked, 30);
      await closeStore(store);
      await expectVerified(dir, acked.length);
      store = await open(dir, options);
      await expectIntact(store, acked);
      producer = store.createProducer({ group: 'pg' });
      await sendMore(producer, acked, 2);
      await closeStore(store);
      expect(errors).toEqual([]);
    });
});
