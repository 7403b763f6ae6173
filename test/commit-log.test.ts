import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../lib/store/clock.js';
import { CommitLog, type AppendResult, type DispatchRequest } from '../lib/store/commit-log.js';
import type { IoBackend } from '../lib/store/io/backend.js';
import { prepareRecord, tagsCodeOf, type RecordInput } from '../lib/store/record-codec.js';
import { checkFrame, FRAME_BLANK } from '../lib/store/record-decoder.js';
import { backendCases, SpyBackend, useTempDirs } from './support/backends.js';

const SEG = 64 * 1024;
const tmp = useTempDirs();

/** A clock whose time a test may also move backwards (an NTP step). */
class SteppingClock extends ManualClock {
  private offsetMs = 0;
  override now(): number {
    return super.now() + this.offsetMs;
  }
  step(ms: number): void {
    this.offsetMs += ms;
  }
}

function msg(i: number, patch: Partial<RecordInput> = {}): RecordInput {
  return { topic: 'T', queueId: i % 2, body: Buffer.from(`message ${i} `.repeat(20)),
    tags: `tag${i % 3}`, keys: [`k${i}`], ...patch };
}

/** Append, waiting for a segment roll when the log asks to. */
async function append(log: CommitLog, inputs: RecordInput[]): Promise<AppendResult[]> {
  const recs = inputs.map((input) => prepareRecord(input));
  for (;;) {
    const results = log.append(recs);
    if (results !== null) return results;
    await log.whenUnblocked();
  }
}

describe.each(backendCases)('CommitLog on the $kind backend', ({ kind, make }) => {
  function open(backend: IoBackend = make(), clock = new SteppingClock()):
  { log: CommitLog; dispatched: DispatchRequest[]; clock: SteppingClock } {
    const dir = path.join(tmp.make(), 'commitlog');
    const log = new CommitLog({ backend, dir, segmentSizeBytes: SEG, windowBytes: 4096, clock });
    const dispatched: DispatchRequest[] = [];
    // The log reuses its request object: keep a copy.
    log.dispatch = (r) => dispatched.push({ ...r });
    return { log, dispatched, clock };
  }

  it('appends single records contiguously with per-queue offsets, and reads them back',
    async () => {
      const { log, dispatched } = open();
      const results: AppendResult[] = [];
      for (let i = 0; i < 6; i++) results.push(...await append(log, [msg(i)]));
      let expected = 0;
      for (const [i, r] of results.entries()) {
        expect(r.physicalOffset).toBe(expected);
        expected += r.size;
        expect(r.queueOffset).toBe(Math.floor(i / 2));
        const rec = log.read(r.physicalOffset)!;
        expect(rec.body.toString()).toBe(`message ${i} `.repeat(20));
        expect([rec.queueId, rec.queueOffset, rec.tags, rec.keys]).toEqual([i % 2, r.queueOffset,
          `tag${i % 3}`, [`k${i}`]]);
        expect(rec.checksum).toBe(r.checksum);
      }
      expect(log.maxOffset).toBe(expected);
      expect(log.nextQueueOffset('T', 0)).toBe(3);
      expect(log.nextQueueOffset('U', 0)).toBe(0);
      expect(dispatched.map((d) => [d.physicalOffset, d.queueOffset, d.tagsCode]))
        .toEqual(results.map((r, i) => [r.physicalOffset, r.queueOffset,
          tagsCodeOf(`tag${i % 3}`)]));
      log.close();
    });

  it('appends a batch as one contiguous run with consecutive queue offsets', async () => {
    const { log, dispatched } = open();
    await append(log, [msg(0, { queueId: 1 })]);
    const batch = await append(log, [1, 2, 3, 4].map((i) => msg(i, { queueId: 1 })));
    expect(batch.map((r) => r.queueOffset)).toEqual([1, 2, 3, 4]);
    for (let i = 1; i < batch.length; i++) {
      expect(batch[i]!.physicalOffset).toBe(batch[i - 1]!.physicalOffset + batch[i - 1]!.size);
    }
    expect(new Set(batch.map((r) => r.storeTimestamp)).size).toBe(1);
    expect(dispatched.slice(1).map((d) => d.queueOffset)).toEqual([1, 2, 3, 4]);
    log.close();
  });

  it('puts a batch that does not fit the segment wholly into the next, after a blank marker',
    async () => {
      const { log } = open();
      const big = (i: number): RecordInput => msg(i, { body: Buffer.alloc(10_000, i) });
      while (log.maxOffset + 2 * prepareRecord(big(0)).size < SEG) await append(log, [big(0)]);
      const end = log.maxOffset;
      const batch = await append(log, [big(1), big(2), big(3)]);
      expect(batch[0]!.physicalOffset).toBe(SEG);
      expect(batch.map((r) => r.physicalOffset - SEG))
        .toEqual([0, batch[0]!.size, 2 * batch[0]!.size]);
      const first = log.queue.files[0]!;
      expect(first.isFull).toBe(true);
      const { buf, dv } = first.scanBuffer();
      expect(checkFrame(buf, dv, end, SEG, end).kind).toBe(FRAME_BLANK);
      expect(log.read(end)).toBeNull();
      const all = [...log.iterate(0)];
      expect(all.at(-1)!.physicalOffset).toBe(batch[2]!.physicalOffset);
      expect(all.slice(-3).map((r) => r.body[0])).toEqual([1, 2, 3]);
      log.close();
    });

  it('refuses a batch larger than a segment without writing anything', async () => {
    const { log } = open();
    await append(log, [msg(0)]);
    const before = log.maxOffset;
    const huge = [1, 2, 3, 4, 5, 6, 7].map((i) => msg(i, { body: Buffer.alloc(10_000) }));
    await expect(append(log, huge)).rejects.toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
    expect(log.maxOffset).toBe(before);
    expect(log.nextQueueOffset('T', 1)).toBe(0);
    log.close();
  });

  it('reads a body as a copy, or zero-copy as a view of the mapping', async () => {
    const { log } = open();
    const [r] = await append(log, [msg(0)]);
    const copy = log.read(r!.physicalOffset)!;
    const view = log.read(r!.physicalOffset, true)!;
    expect(view.body).toEqual(copy.body);
    const mapping = log.queue.files[0]!.file.mapping;
    expect(mapping === null).toBe(kind !== 'mmap');
    expect(copy.body.buffer).not.toBe(mapping?.buffer);
    if (mapping !== null) {
      expect(view.body.buffer).toBe(mapping.buffer);
      expect(view.body.byteOffset - mapping.byteOffset).toBe(r!.physicalOffset + 64);
    }
    log.close();
  });

  it('iterates across segments from any record start', async () => {
    const { log } = open();
    const results: AppendResult[] = [];
    for (let i = 0; i < 40; i++) {
      results.push(...await append(log, [msg(i, { body: Buffer.alloc(5000, i) })]));
    }
    expect(log.queue.files.length).toBeGreaterThanOrEqual(3);
    expect([...log.iterate(0)].map((r) => r.physicalOffset))
      .toEqual(results.map((r) => r.physicalOffset));
    const from = results[20]!.physicalOffset;
    expect([...log.iterate(from, true)].map((r) => r.body[0])).toEqual(
      Array.from({ length: 20 }, (_, i) => 20 + i));
    log.close();
  });

  it('never hands out a store timestamp earlier than one before it', async () => {
    const { log, clock } = open();
    const t0 = clock.now();
    const [a] = await append(log, [msg(0)]);
    clock.step(-60_000);
    const [b] = await append(log, [msg(1)]);
    clock.advance(120_000);
    const [c] = await append(log, [msg(2)]);
    expect([a!.storeTimestamp, b!.storeTimestamp, c!.storeTimestamp])
      .toEqual([t0, t0, t0 + 60_000]);
    expect(log.read(b!.physicalOffset)!.storeTimestamp).toBe(t0);
    expect(log.maxStoreTimestamp).toBe(t0 + 60_000);
    log.close();
  });

  it('flushes what was appended and reports where', async () => {
    const spy = new SpyBackend(make());
    const { log } = open(spy);
    const results = await append(log, [msg(0), msg(2)]);
    expect(log.flushedOffset).toBe(0);
    const flushed = await log.flush();
    expect(flushed).toBe(log.maxOffset);
    expect(log.flushedOffset).toBe(log.maxOffset);
    expect(log.flushedTailOffset).toBe(results[1]!.physicalOffset);
    expect(spy.flushes).toBeGreaterThan(0);
    log.close();
  });

  it('reads nothing where no record starts', async () => {
    const { log } = open();
    const [r] = await append(log, [msg(0)]);
    expect(log.read(r!.physicalOffset + 1)).toBeNull();
    expect(log.read(log.maxOffset)).toBeNull();
    expect(log.read(SEG * 5)).toBeNull();
    log.close();
  });
});
