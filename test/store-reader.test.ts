/**
 * StoreReader: a record that fails its checks where the log still holds data is reported as
 * CORRUPT_DATA when read, never skipped; an entry under a deleted segment reads as removed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MessageStore } from '../lib/store/message-store.js';
import { offsetToFileName } from '../lib/store/mapped-file.js';
import { backendCases, useTempDirs } from './support/backends.js';

const SEG = 64 * 1024;
const tmp = useTempDirs();

describe.each(backendCases.filter((c) => c.kind !== 'sim'))('reading on $kind', ({ make }) => {
  it('throws CORRUPT_DATA for a garbled record in an older segment', async () => {
    const dir = tmp.make();
    const options = { backend: make(), commitLogSegmentSize: SEG, maxMessageSize: 8 * 1024 };
    let store = await MessageStore.open(dir, options);
    const puts = [];
    for (let i = 0; i < 200; i++) {
      puts.push(await store.putMessage({ topic: 'T', queueId: 0, body: Buffer.alloc(1000, i) }));
    }
    await store.close();
    const victim = puts[3]!;
    expect(victim.physicalOffset).toBeLessThan(SEG);
    const file = path.join(dir, 'commitlog', offsetToFileName(0));
    const bytes = fs.readFileSync(file);
    bytes[victim.physicalOffset + 100] = bytes[victim.physicalOffset + 100]! ^ 0xff; // the body
    fs.writeFileSync(file, bytes);
    store = await MessageStore.open(dir, { ...options, backend: make() });
    try {
      expect(store.getMessage('T', 0, 0, 3).records.map((r) => r.queueOffset)).toEqual([0, 1, 2]);
      expect(() => store.getMessage('T', 0, 0, 10)).toThrow(expect.objectContaining({
        code: 'CORRUPT_DATA', offset: victim.physicalOffset }));
      expect(store.lookMessageByOffset(victim.physicalOffset)).toBeNull();
      expect(store.getMessage('T', 0, 4, 2).records[0]!.body[0]).toBe(4);
    } finally {
      await store.close();
    }
  });
});
