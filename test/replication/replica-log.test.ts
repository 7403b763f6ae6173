/**
 * The commit log as replication sees it (lib/store/replica-log.ts), on every backend: a
 * follower engine fed the master's chunks ends with the same bytes at the same offsets, its
 * consume queues and index built; it refuses frames that are not at its end, damaged, resealed
 * with a bad topic, out of queue order, or a blank that does not seal the segment, writing
 * nothing; it cuts a diverged tail and starts an empty log over at a later segment.
 */
import { describe, expect, it } from 'vitest';
import { checksum32 } from '../../lib/store/checksum.js';
import { StoreEngine } from '../../lib/store/store-engine.js';
import type { IoBackend } from '../../lib/store/io/backend.js';
import { BLANK_MAGIC } from '../../lib/store/record-codec.js';
import { backendCases, useTempDirs } from '../support/backends.js';
import { rejection } from '../support/errors.js';
import { SimBackend } from '../support/sim-backend.js';

const tmp = useTempDirs();
const SEGMENT = 64 * 1024;

async function open(backend: IoBackend, dir = tmp.make()): Promise<StoreEngine> {
  return StoreEngine.open(dir, { backend, commitLogSegmentSize: SEGMENT });
}

async function fill(master: StoreEngine, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) {
    await master.putMessage({ topic: `t${i % 3}`, queueId: i % 2,
      body: Buffer.alloc(300 + (i % 7) * 50, i), keys: [`key-${i}`] });
  }
}

/** Ship the master's log to the follower until it holds everything. */
async function catchUp(master: StoreEngine, follower: StoreEngine, batch = 8192): Promise<number> {
  let chunks = 0;
  for (let at = follower.commitLogMaxOffset; at < master.commitLogMaxOffset; chunks++) {
    const { frames, next } = master.replica.readChunk(at, batch);
    expect(frames.length).toBeGreaterThan(0);
    await follower.replica.append(at, frames);
    expect(follower.commitLogMaxOffset).toBe(next);
    at = next;
  }
  return chunks;
}

/** A master with 200 records and a follower that holds them all, and the follower's records. */
async function caughtUp(make: () => IoBackend): Promise<{ master: StoreEngine;
  follower: StoreEngine; before: { offset: number; checksum: number }[] }> {
  const master = await open(make());
  const follower = await open(make());
  follower.follow(true);
  await fill(master, 200);
  await catchUp(master, follower);
  return { master, follower, before: records(follower) };
}

function records(engine: StoreEngine): { offset: number; checksum: number }[] {
  return [...engine.storage.commitLog.iterate(engine.commitLogMinOffset)].map((r) =>
    ({ offset: r.physicalOffset, checksum: r.checksum }));
}

describe.each(backendCases)('ReplicaLog on $kind', ({ make }) => {
  it('a follower fed the master\'s chunks holds the same records at the same offsets', async () => {
    const master = await open(make());
    const follower = await open(make());
    follower.follow(true);
    await fill(master, 600);
    const chunks = await catchUp(master, follower);
    expect(chunks).toBeGreaterThan(5);
    expect(follower.commitLogMaxOffset).toBe(master.commitLogMaxOffset);
    expect(master.commitLogMaxOffset).toBeGreaterThan(3 * SEGMENT);
    expect(records(follower)).toEqual(records(master));
    for (const t of ['t0', 't1', 't2']) {
      for (const q of [0, 1]) {
        expect(follower.getMaxOffsetInQueue(t, q)).toBe(master.getMaxOffsetInQueue(t, q));
      }
    }
    expect(follower.queryMessage('t1', 'key-301').map((r) => r.physicalOffset))
      .toEqual(master.queryMessage('t1', 'key-301').map((r) => r.physicalOffset));
    expect(follower.replica.tail()).toEqual(master.replica.tail());
    // Appends stay refused on the follower; it reopens with everything.
    await expect(follower.putMessage({ topic: 't0', queueId: 0, body: Buffer.from('x') }))
      .rejects.toMatchObject({ code: 'NOT_MASTER' });
    await Promise.all([master.close(), follower.close()]);
  });

  it('refuses frames not at its end or damaged, and writes nothing', async () => {
    const master = await open(make());
    const follower = await open(make());
    follower.follow(true);
    await fill(master, 20);
    const { frames } = master.replica.readChunk(0, 4096);
    const refuse = async (offset: number, bytes: Buffer, message: RegExp): Promise<void> => {
      const err = await rejection(follower.replica.append(offset, bytes));
      expect(err.code).toBe('CORRUPT_DATA');
      expect(err.message).toMatch(message);
      expect(follower.commitLogMaxOffset).toBe(0);
      expect(follower.getMaxOffsetInQueue('t0', 0)).toBe(0);
    };
    await refuse(100, frames, /at offset 100, but this log ends at 0/);
    const flipped = Buffer.from(frames);
    flipped.writeUInt8(flipped.readUInt8(200) ^ 1, 200);
    await refuse(0, flipped, /invalid: checksum/);
    await refuse(0, frames.subarray(0, frames.length - 5), /invalid/);
    // A record resealed with a topic that would leave the directory ('t0' becomes '..').
    const size = frames.readUInt32LE(4);
    const evil = Buffer.from(frames.subarray(0, size));
    const topicAt = 64 + evil.readUInt32LE(20);
    expect(evil[topicAt]).toBe(2);
    evil.write('..', topicAt + 1, 'latin1');
    evil.writeUInt32LE(checksum32(evil, 4, size), 0);
    await refuse(0, evil, /invalid: topic/);
    // The second record of a queue presented first: its queue offset does not continue it.
    await follower.replica.append(0, frames.subarray(0, size));
    const rest = master.replica.readChunk(size, 4096).frames;
    const next = rest.readUInt32LE(4);
    const gap = Buffer.from(rest.subarray(next, next + rest.readUInt32LE(next + 4)));
    await expect(follower.replica.append(size, gap)).rejects.toMatchObject(
      { code: 'CORRUPT_DATA' });
    // A blank marker that does not seal the segment.
    const blank = Buffer.alloc(12);
    blank.writeUInt32LE(100, 4);
    blank.writeUInt32LE(BLANK_MAGIC, 8);
    blank.writeUInt32LE(checksum32(blank, 4, 12), 0);
    await expect(follower.replica.append(size, blank)).rejects.toMatchObject(
      { code: 'CORRUPT_DATA', message: expect.stringMatching(/does not seal the segment/) });
    expect(follower.commitLogMaxOffset).toBe(size);
    await Promise.all([master.close(), follower.close()]);
  });

  it('cuts a diverged tail and takes the new master\'s records after it', async () => {
    const master = await open(make());
    const followerDisk = make();
    const follower = await open(followerDisk);
    follower.follow(true);
    await fill(master, 300);
    await catchUp(master, follower);
    const before = records(follower);
    const cut = before[200]!.offset;
    expect(master.replica.frameMatches({ ...before[199]!, size: cut - before[199]!.offset }))
      .toBe(true);
    // Over several segments the candidates are segment starts; inside one, its records.
    const end = follower.commitLogMaxOffset;
    const starts = follower.replica.candidates(-1, end + 1, 8);
    expect(starts.map((c) => c.offset)).toEqual(
      Array.from({ length: Math.ceil(end / SEGMENT) }, (_, i) => i * SEGMENT));
    const inside = follower.replica.candidates(starts.at(-1)!.offset, end + 1, 8);
    expect(inside).toHaveLength(8);
    expect(inside.every((c) => c.offset > starts.at(-1)!.offset && c.offset < end)).toBe(true);
    expect(inside.at(-1)).toMatchObject(before.at(-1)!);
    expect([...starts, ...inside].every((c) => master.replica.frameMatches(c))).toBe(true);
    const { removedBytes } = await follower.replica.truncateTo(cut);
    expect(removedBytes).toBe(master.commitLogMaxOffset - cut);
    expect(records(follower)).toEqual(before.slice(0, 200));
    expect(follower.replica.tailMatches(follower.replica.tail().lastRecord!, cut)).toBe(true);
    expect(master.replica.tailMatches(follower.replica.tail().lastRecord!, cut)).toBe(true);
    await catchUp(master, follower);
    expect(records(follower)).toEqual(records(master));
    await Promise.all([master.close(), follower.close()]);
    const reopened = await open(followerDisk, follower.dir);
    expect(reopened.commitLogMaxOffset).toBe(master.commitLogMaxOffset);
    await reopened.close();
  });

  it('a cut while a flush is under way: the flush claims nothing it synced before the cut',
    async () => {
      // Simulator seed 257 with a follower: a flush started before a cut ended after it and
      // called the cut bytes flushed ("positions out of order"): the follower's store stopped
      // and never caught up.
      const { master, follower, before } = await caughtUp(make);
      const cut = before[150]!.offset;
      const inFlight = follower.storage.commitLog.flush();
      await follower.replica.truncateTo(cut);
      expect(await inFlight).toBeLessThanOrEqual(cut);
      expect(follower.commitLogFlushedOffset).toBe(cut);
      await catchUp(master, follower);
      await follower.flushed();
      expect(follower.commitLogFlushedOffset).toBe(master.commitLogMaxOffset);
      expect(records(follower)).toEqual(records(master));
      await Promise.all([master.close(), follower.close()]);
    });

  it('refuses an append or another cut while a cut runs, and the cut holds', async () => {
    const { master, follower, before } = await caughtUp(make);
    const cut = before[150]!.offset;
    const cutting = follower.replica.truncateTo(cut);
    // The cut waits for its flushes; the log already ends at the cut: frames from there would
    // be placed inside it, and a second cut would race it.
    expect(follower.commitLogMaxOffset).toBe(cut);
    const { frames } = master.replica.readChunk(cut, 8192);
    const append = await rejection(follower.replica.append(cut, frames));
    expect(append.code).toBe('INVALID_STATE');
    expect(append.message).toContain(`an append at offset ${cut} of the replicated log while ` +
      `a cut at ${cut} runs`);
    expect((await rejection(follower.replica.truncateTo(before[100]!.offset))).code)
      .toBe('INVALID_STATE');
    await cutting;
    expect(records(follower)).toEqual(before.slice(0, 150));
    expect(follower.commitLogFlushedOffset).toBe(cut);
    // Once it is done, the master's records after the cut are taken as usual.
    await catchUp(master, follower);
    expect(records(follower)).toEqual(records(master));
    await Promise.all([master.close(), follower.close()]);
  });

  it('an empty log starts over at a later segment', async () => {
    const follower = await open(make());
    follower.follow(true);
    await expect(follower.replica.restartAt(100)).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
    await follower.replica.restartAt(3 * SEGMENT);
    expect(follower.commitLogMinOffset).toBe(3 * SEGMENT);
    expect(follower.commitLogMaxOffset).toBe(3 * SEGMENT);
    const blank = follower.replica.tail();
    expect(blank).toEqual({ minOffset: 3 * SEGMENT, maxOffset: 3 * SEGMENT, lastRecord: null });
    await follower.close();
  });
});

describe('ReplicaLog on the simulated disk', () => {
  it('a cut tail stays cut after a power cut; the cut passes a flushed checkpoint', async () => {
    // Simulator seed 1 with a follower: the cut bytes were left in the file and a power cut
    // brought the records back (without their ConsumeQueue entries); and a checkpoint already
    // past the cut made the truncation fail ("went backwards").
    const master = await open(new SimBackend({ seed: 3 }));
    const disk = new SimBackend({ seed: 4 });
    const follower = await open(disk);
    follower.follow(true);
    await fill(master, 120);
    await catchUp(master, follower);
    await follower.flushed();
    await follower.runRetention(); // writes the checkpoint: flushed to the end
    const before = records(follower);
    const cut = before[80]!.offset;
    await follower.replica.truncateTo(cut);
    disk.crash({ mode: 'random-subset' });
    await follower.close().catch(() => undefined);
    const reopened = await open(disk, follower.dir);
    try {
      expect(reopened.commitLogMaxOffset).toBe(cut);
      expect(records(reopened)).toEqual(before.slice(0, 80));
      for (const t of ['t0', 't1', 't2']) {
        for (const q of [0, 1]) {
          const logged = before.slice(0, 80).filter((_, i) => i % 3 === Number(t[1]) &&
            i % 2 === q).length;
          expect(reopened.getMaxOffsetInQueue(t, q)).toBe(logged);
        }
      }
    } finally {
      await Promise.all([reopened.close(), master.close()]);
    }
  });

  it('a record this master reads damaged is CORRUPT_DATA, not a divergence', async () => {
    // Simulator seed 58 with a follower: a bit flipped in the master's read of a record made
    // the follower cut that record, acknowledged under SYNC_MASTER, from its log.
    const disk = new SimBackend({ seed: 5 });
    const master = await open(disk);
    const follower = await open(new SimBackend({ seed: 6 }));
    follower.follow(true);
    await fill(master, 30);
    await catchUp(master, follower);
    const victim = records(follower)[20]!;
    const file = master.storage.commitLog.queue.findByOffset(victim.offset)!;
    disk.flipBitOnRead(file.path, victim.offset - file.fileFromOffset + 40, 3);
    const id = follower.replica.candidates(victim.offset - 1, victim.offset + 1, 1)[0]!;
    expect(id.offset).toBe(victim.offset);
    expect(() => master.replica.frameMatches(id)).toThrow(/fails its checksum on this master/);
    // Inside a record of this log (no record starts there): a plain mismatch.
    expect(master.replica.frameMatches({ offset: victim.offset + 16, size: 200, checksum: 1 }))
      .toBe(false);
    await Promise.all([master.close(), follower.close()]);
  });
});
