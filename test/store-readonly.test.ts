/**
 * openReadOnly (issue 4, SPEC §6): a store another process owns, opened without its lock and
 * without changing a byte, sees every message the owner flushed; its geometry comes from the
 * files; after the owner is killed it still sees everything flushed, and leaves the crash for
 * the owner's next open to recover.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MessageStore } from '../lib/message-store.js';
import { StoreEngine } from '../lib/store/store-engine.js';
import { useTempDirs } from './support/backends.js';
import { ensureBuilt } from './support/dist.js';
import { rejection } from './support/errors.js';
import { openStore, sendMany } from './support/messaging.js';

const OWNER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures',
  'readonly-owner.mjs');
const tmp = useTempDirs();
const children: ChildProcess[] = [];

beforeAll(() => ensureBuilt());
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** Every file under `dir` with a hash of its bytes and its mtime. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) {
        walk(p);
        continue;
      }
      const hash = crypto.createHash('sha1').update(fs.readFileSync(p)).digest('hex');
      out[path.relative(dir, p)] = `${hash} ${fs.statSync(p).mtimeMs}`;
    }
  };
  walk(dir);
  return out;
}

/** Every message of topic `t` (3 queues), as `m<i>` bodies sorted by i. */
async function bodies(store: MessageStore): Promise<string[]> {
  const out: string[] = [];
  for (let queueId = 0; queueId < 3; queueId++) {
    for (let offset = 0; ;) {
      const page = await store.browse({ topic: 't', queueId, offset, maxNum: 1000 });
      out.push(...page.messages.map((m) => m.body.toString()));
      if (page.nextOffset >= page.maxOffset) break;
      offset = page.nextOffset;
    }
  }
  return out.sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
}

function expected(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `m${i}`);
}

class Owner {
  private readonly lines: AsyncIterator<string>;
  constructor(readonly child: ChildProcess) {
    this.lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }
  static async start(dir: string): Promise<Owner> {
    const child = spawn(process.execPath, [OWNER, JSON.stringify({ dir })],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(child);
    const owner = new Owner(child);
    expect(await owner.next()).toBe('ready');
    return owner;
  }
  async next(): Promise<string> {
    const { value, done } = await this.lines.next();
    if (done === true) throw new Error('the owner exited');
    return value;
  }
  async write(n: number): Promise<string> {
    this.child.stdin!.write(`write ${n}\n`);
    return this.next();
  }
}

describe('openReadOnly', () => {
  it.each(['mmap', 'file'] as const)('changes no file and takes no lock of a closed store ' +
    '(%s backend)', async (backend) => {
    const dir = tmp.make();
    const store = await openStore(dir, { consumeQueueEntriesPerFile: 64, backend });
    await sendMany(store.createProducer({ group: 'pg' }), 't', 300, (i) => ({ keys: `k${i}` }));
    await store.close();
    const before = fingerprint(dir);
    const ro = await MessageStore.openReadOnly(dir, { backend });
    expect((await ro.stats()).backend).toBe(backend);
    expect((await ro.queryMessage({ topic: 't', key: 'k7' }))[0]!.body.toString()).toBe('m7');
    expect((await ro.stats()).topics[0]).toMatchObject({ topic: 't', messages: 300 });
    // The owner's lock is free while a read-only store is open.
    const owner = await openStore(dir, { consumeQueueEntriesPerFile: 64 });
    await owner.close();
    const after = fingerprint(dir);
    await ro.close();
    expect(fingerprint(dir)).toEqual(after);
    // Only the owner's open and close touched files (lock, checkpoint, abort gone again).
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
  });

  it('refuses a directory that holds no store, and creates nothing', async () => {
    const empty = tmp.make();
    expect((await rejection(MessageStore.openReadOnly(empty))).code).toBe('STORE_NOT_FOUND');
    const missing = path.join(empty, 'nope');
    expect((await rejection(StoreEngine.openReadOnly(missing))).code).toBe('STORE_NOT_FOUND');
    expect(fs.existsSync(missing)).toBe(false);
    expect(fs.readdirSync(empty)).toEqual([]);
    const err = await rejection(MessageStore.openReadOnly(empty,
      { flushDiskType: 'SYNC_FLUSH' } as never));
    expect(err).toMatchObject({ code: 'INVALID_OPTION', property: 'flushDiskType' });
  });

  it('sees what a live owner in another process flushed, then survives its kill -9',
    async () => {
      const dir = tmp.make();
      const owner = await Owner.start(dir);
      expect(await owner.write(1000)).toBe('wrote 1000');
      const first = await MessageStore.openReadOnly(dir);
      expect(first.role).toBe('readonly');
      // Segments of 64 KiB and ConsumeQueue files of 100 entries, read from the files.
      expect((await first.stats()).commitLog).toMatchObject({ segmentSizeBytes: 64 * 1024 });
      expect((await first.stats()).commitLog.segments).toBeGreaterThan(1);
      expect(await bodies(first)).toEqual(expected(1000));
      expect((await first.queryMessage({ topic: 't', key: 'k999' }))[0]!.body.toString())
        .toBe('m999');

      expect(await owner.write(500)).toBe('wrote 1500');
      const second = await MessageStore.openReadOnly(dir);
      expect(await bodies(second)).toEqual(expected(1500));
      // The first is a snapshot as of its open.
      expect(await bodies(first)).toEqual(expected(1000));
      await first.close();

      const exited = new Promise((resolve) => owner.child.once('exit', resolve));
      owner.child.kill('SIGKILL');
      await exited;
      const files = fingerprint(dir);
      expect(Object.keys(files)).toContain('abort');
      const third = await MessageStore.openReadOnly(dir);
      expect(await bodies(third)).toEqual(expected(1500));
      const m = (await third.queryMessage({ topic: 't', key: 'k1499' }))[0]!;
      expect((await third.viewMessage(m.msgId))?.body.toString()).toBe('m1499');
      await third.close();
      await second.close();
      expect(fingerprint(dir)).toEqual(files);
      // The owner's next open recovers the crash as usual.
      const again = await MessageStore.open(dir, { commitLogSegmentSize: 64 * 1024,
        consumeQueueEntriesPerFile: 100 });
      try {
        expect(await bodies(again)).toEqual(expected(1500));
      } finally {
        await again.close();
      }
    });
});

describe('an owner reopening a store keeps the geometry of its files', () => {
  it('uses the files\' segment and ConsumeQueue sizes when the options leave them out',
    async () => {
      const dir = tmp.make();
      const options = { commitLogSegmentSize: 64 * 1024, consumeQueueEntriesPerFile: 50 };
      let store = await MessageStore.open(dir, options);
      await sendMany(store.createProducer({ group: 'pg' }), 't', 1000);
      await store.close();
      store = await MessageStore.open(dir);
      try {
        await sendMany(store.createProducer({ group: 'pg' }), 't', 1000);
        expect((await store.stats()).commitLog.segmentSizeBytes).toBe(64 * 1024);
        let total = 0;
        for (let q = 0; q < 4; q++) total += await store.maxOffset('t', q);
        expect(total).toBe(2000);
      } finally {
        await store.close();
      }
      const sizes = new Set(fs.readdirSync(path.join(dir, 'commitlog'))
        .map((name) => fs.statSync(path.join(dir, 'commitlog', name)).size));
      expect([...sizes]).toEqual([64 * 1024]);
      const cq = path.join(dir, 'consumequeue', 't', '0');
      expect(fs.readdirSync(cq).map((n) => fs.statSync(path.join(cq, n)).size))
        .toEqual(expect.arrayContaining([50 * 20]));
    });

  it('refuses options that contradict the files, changing nothing', async () => {
    const dir = tmp.make();
    const store = await MessageStore.open(dir, { commitLogSegmentSize: 64 * 1024,
      consumeQueueEntriesPerFile: 50 });
    await sendMany(store.createProducer({ group: 'pg' }), 't', 1000);
    await store.close();
    const before = fingerprint(dir);
    const wrongSize = await rejection(MessageStore.open(dir, { commitLogSegmentSize: 2 ** 20 }));
    expect(wrongSize).toMatchObject({ code: 'INVALID_OPTION', property: 'commitLogSegmentSize',
      actual: 64 * 1024 });
    const wrongEntries = await rejection(MessageStore.open(dir,
      { consumeQueueEntriesPerFile: 100 }));
    expect(wrongEntries).toMatchObject({ code: 'INVALID_OPTION',
      property: 'consumeQueueEntriesPerFile', actual: 50 });
    expect(fingerprint(dir)).toEqual(before);
  });
});
