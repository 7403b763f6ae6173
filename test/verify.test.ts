/**
 * verifyStore (issue 4): a healthy store verifies clean; a flipped byte in a record, a
 * ConsumeQueue entry or an index entry is found and named, whichever segment it is in; and
 * verification changes no file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyStore } from '../lib/store/verify.js';
import { INDEX_HEADER_BYTES, indexFileDefaults, SLOT_BYTES } from '../lib/store/index-header.js';
import type { MessageExt } from '../lib/broker/message.js';
import { useTempDirs } from './support/backends.js';
import { openStore, sendMany } from './support/messaging.js';

const tmp = useTempDirs();
const SEGMENT = 64 * 1024;

/** A closed store of 2,000 keyed messages in 64 KiB segments; returns the messages. */
async function makeStore(dir: string): Promise<MessageExt[]> {
  const store = await openStore(dir, { commitLogSegmentSize: SEGMENT });
  await store.createTopic('t', { queueNums: 2 });
  await sendMany(store.createProducer({ group: 'pg' }), 't', 2000, (i) => ({
    keys: [`k${i}`, 'shared'], tags: i % 2 === 0 ? 'even' : 'odd',
    body: `message ${i} ${'x'.repeat(100)}`,
  }));
  const all: MessageExt[] = [];
  for (const queueId of [0, 1]) {
    all.push(...(await store.browse({ topic: 't', queueId, maxNum: 2000 })).messages);
  }
  await store.close();
  return all.sort((a, b) => a.commitLogOffset - b.commitLogOffset);
}

function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0]! ^= 0x5a;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

function segmentOf(dir: string, offset: number): { file: string; at: number } {
  const from = offset - (offset % SEGMENT);
  return { file: path.join(dir, 'commitlog', String(from).padStart(20, '0')), at: offset - from };
}

describe('verifyStore', () => {
  it('finds a healthy store healthy, and changes nothing', async () => {
    const dir = tmp.make();
    await makeStore(dir);
    const before = fs.readdirSync(path.join(dir, 'commitlog'));
    const progress: number[] = [];
    const report = await verifyStore(dir, { onProgress: (p) => progress.push(p.checkedBytes) });
    expect(report).toMatchObject({ healthy: true, records: 2000, queues: 2,
      indexEntries: 4000, problems: [], problemCount: 0, tornTail: false });
    expect(report.checkedBytes).toBe(report.commitLog.maxOffset);
    expect(progress.at(-1)).toBe(report.checkedBytes);
    expect(fs.readdirSync(path.join(dir, 'commitlog'))).toEqual(before);
    expect(fs.existsSync(path.join(dir, 'abort'))).toBe(false);
  });

  it('finds a garbled record in an old segment, and checks the segments after it', async () => {
    const dir = tmp.make();
    const messages = await makeStore(dir);
    const victim = messages[10]!;
    const { file, at } = segmentOf(dir, victim.commitLogOffset);
    flipByte(file, at + victim.storeSize - 20);
    const report = await verifyStore(dir);
    expect(report.healthy).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'corrupt-record',
      offset: victim.commitLogOffset })]);
    // The rest of that segment is skipped; every later segment is checked.
    const sameSegment = messages.filter((m) => m.commitLogOffset >= victim.commitLogOffset &&
      m.commitLogOffset < victim.commitLogOffset - at + SEGMENT).length;
    expect(report.records).toBe(2000 - sameSegment);
  });

  it('reports a bad record in the newest segment, which the open does not check', async () => {
    const dir = tmp.make();
    const messages = await makeStore(dir);
    const victim = messages[messages.length - 5]!;
    const { file, at } = segmentOf(dir, victim.commitLogOffset);
    flipByte(file, at + 60);
    const report = await verifyStore(dir);
    expect(report.healthy).toBe(false);
    expect(report.problems[0]).toMatchObject({ kind: 'corrupt-record',
      offset: victim.commitLogOffset });
  });

  it('finds a ConsumeQueue entry that points at the wrong size', async () => {
    const dir = tmp.make();
    const messages = await makeStore(dir);
    const victim = messages.find((m) => m.queueId === 1 && m.queueOffset === 7)!;
    const cq = path.join(dir, 'consumequeue', 't', '1', '0'.repeat(20));
    flipByte(cq, 7 * 20 + 8);
    const report = await verifyStore(dir);
    expect(report.healthy).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'consume-queue',
      topic: 't', queueId: 1, offset: victim.commitLogOffset })]);
  });

  it('finds an index entry that points at the wrong record', async () => {
    const dir = tmp.make();
    await makeStore(dir);
    const index = path.join(dir, 'index', fs.readdirSync(path.join(dir, 'index'))[0]!);
    const entries = INDEX_HEADER_BYTES + indexFileDefaults.hashSlotCount * SLOT_BYTES;
    // Entry 100's commit-log offset (bytes 4..12 of the entry), low byte.
    flipByte(index, entries + 99 * 20 + 4);
    const report = await verifyStore(dir);
    expect(report.healthy).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'index' })]);
  });
});
