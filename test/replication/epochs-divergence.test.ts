/**
 * Where a follower's log parts from its master's, told by master epochs (simulator seed 201
 * with a follower): a master crash lost a tail the follower holds, the master wrote other
 * records in its place, and the first record of the next segment came out the same bytes on
 * both. Comparing records finds that record on both and keeps the follower's stretch before
 * it; the epochs say where the master's new life began, and the follower cuts there.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/message-store.js';
import { REPLICATION_TRANSPORT, storeInternals } from '../../lib/internal.js';
import { ManualClock } from '../../lib/store/clock.js';
import { epochsPath, readEpochs } from '../../lib/replication/epochs.js';
import type { StoreEngine } from '../../lib/store/store-engine.js';
import { SimNetwork } from '../sim/sim-network.js';
import { ProcessDisk } from '../sim/process-disk.js';
import { useTempDirs } from '../support/backends.js';
import { SimBackend } from '../support/sim-backend.js';
import { recordingLogger } from './helpers.js';
import { rejection } from '../support/errors.js';

const tmp = useTempDirs();
const SEGMENT = 64 * 1024;
const T0 = 1_700_000_000_000;
const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

/** The whole log, byte for byte as replication ships it (blank markers included). */
function logBytes(engine: StoreEngine): Buffer {
  const parts: Buffer[] = [];
  for (let at = engine.commitLogMinOffset; at < engine.commitLogMaxOffset;) {
    const { frames, next } = engine.replica.readChunk(at, 1 << 20);
    parts.push(frames);
    at = next;
  }
  return Buffer.concat(parts);
}

/** Records of topic A until the segment has less than 3000 bytes left, then one of B. */
async function fillSegment(engine: StoreEngine, size: number, fill: number): Promise<number> {
  while (SEGMENT - engine.commitLogMaxOffset > 3000) {
    await engine.putMessage({ topic: 'A', queueId: 0, body: Buffer.alloc(size, fill) });
  }
  const b = await engine.putMessage({ topic: 'B', queueId: 0, body: Buffer.alloc(4000, 9) });
  return b.physicalOffset;
}

describe('a follower whose log parted from its master\'s after a master crash', () => {
  it('cuts where the master\'s new epoch began, though a later record is the same bytes on ' +
    'both', async () => {
    const sim = new SimBackend({ seed: 201 });
    const masterDir = tmp.make();
    let masterUp = true;
    const network = new SimNetwork({ masterAlive: () => masterUp, followerAlive: () => true });
    const masterClock = new ManualClock(T0); // never advanced: records of equal input are equal
    let disk = new ProcessDisk(sim);
    const openMaster = (): Promise<MessageStore> => MessageStore.open(masterDir, {
      brokerRole: 'ASYNC_MASTER', haListenPort: 0, backend: disk, clock: masterClock,
      commitLogSegmentSize: SEGMENT, [REPLICATION_TRANSPORT]: network } as never);
    let master = await openMaster();
    const clock = new ManualClock(T0);
    const logger = recordingLogger();
    const followerDisk = new SimBackend({ seed: 202 });
    const follower = await MessageStore.open(tmp.make(), { brokerRole: 'SLAVE', clock, logger,
      backend: followerDisk, haMasterAddress: '127.0.0.1:10912', commitLogSegmentSize: SEGMENT,
      [REPLICATION_TRANSPORT]: network } as never);
    const engine = storeInternals(follower).engine;
    const caughtUp = async (): Promise<void> => {
      const m = storeInternals(master).engine;
      for (let i = 0; i < 2000 && engine.commitLogMaxOffset !== m.commitLogMaxOffset; i++) {
        clock.advance(100); // reconnects wait on the follower's clock
        await turns(3);
      }
      expect(engine.commitLogMaxOffset).toBe(m.commitLogMaxOffset);
    };
    try {
      let m = storeInternals(master).engine;
      while (m.commitLogMaxOffset < SEGMENT / 2) {
        await m.putMessage({ topic: 'A', queueId: 0, body: Buffer.alloc(1000, 1) });
      }
      await m.flushed();
      const lostFrom = m.commitLogMaxOffset; // the master's disk holds the log up to here
      expect(await fillSegment(m, 1000, 2)).toBe(SEGMENT);
      await caughtUp();
      const sameAtStart = engine.replica.tail().lastRecord!;
      expect(sameAtStart.offset).toBe(SEGMENT);

      // The master's machine loses power: its unflushed tail is gone; it writes other records
      // (other sizes) in their place, and then B again, the same bytes at the segment start.
      masterUp = false;
      disk.kill();
      await master.close().catch(() => undefined);
      sim.crash({ mode: 'drop-unflushed' });
      disk = new ProcessDisk(sim);
      master = await openMaster();
      m = storeInternals(master).engine;
      expect(m.commitLogMaxOffset).toBe(lostFrom);
      expect(await fillSegment(m, 700, 3)).toBe(SEGMENT);
      expect(m.replica.tailMatches(sameAtStart, engine.commitLogMaxOffset)).toBe(true);
      expect(logBytes(engine).equals(logBytes(m))).toBe(false);
      await m.putMessage({ topic: 'C', queueId: 0, body: Buffer.from('after') });
      masterUp = true;
      await caughtUp();

      expect(logger.lines.find((l) => l.includes('truncated'))).toMatch(new RegExp(
        `warn .*diverged from the master's .*truncated it to offset ${lostFrom}, dropping ` +
        `${sameAtStart.offset + sameAtStart.size - lostFrom} bytes`));
      expect(logBytes(engine).equals(logBytes(m))).toBe(true);
      expect(engine.getMaxOffsetInQueue('A', 0)).toBe(m.getMaxOffsetInQueue('A', 0));
      expect(engine.getMaxOffsetInQueue('C', 0)).toBe(1);
      // The follower holds the master's epochs: the first life, and the one after the crash.
      expect(readEpochs(followerDisk, engine.dir)).toEqual([{ epoch: 1, start: 0 },
        { epoch: 2, start: lostFrom }]);
      expect(readEpochs(sim, m.dir)).toEqual(readEpochs(followerDisk, engine.dir));
    } finally {
      masterUp = false;
      await follower.close();
      await master.close();
    }
  });
});

describe('master epochs in the data directory', () => {
  it('a promoted follower starts its own epoch where the master\'s copy ends', async () => {
    const network = new SimNetwork({ masterAlive: () => true, followerAlive: () => true });
    const masterDisk = new SimBackend({ seed: 5 });
    const master = await MessageStore.open(tmp.make(), { brokerRole: 'ASYNC_MASTER',
      haListenPort: 0, backend: masterDisk, commitLogSegmentSize: SEGMENT,
      [REPLICATION_TRANSPORT]: network } as never);
    const clock = new ManualClock(T0);
    const disk = new SimBackend({ seed: 6 });
    const dir = tmp.make();
    const options = { brokerRole: 'SLAVE', clock, backend: disk, haListenPort: 10913,
      haMasterAddress: '127.0.0.1:10912', commitLogSegmentSize: SEGMENT,
      [REPLICATION_TRANSPORT]: network };
    const follower = await MessageStore.open(dir, options as never);
    const m = storeInternals(master).engine;
    const engine = storeInternals(follower).engine;
    try {
      for (let i = 0; i < 20; i++) {
        await m.putMessage({ topic: 'A', queueId: 0, body: Buffer.alloc(500, i) });
      }
      for (let i = 0; i < 500 && engine.commitLogMaxOffset < m.commitLogMaxOffset; i++) {
        clock.advance(100);
        await turns(3);
      }
      const end = m.commitLogMaxOffset;
      expect(engine.commitLogMaxOffset).toBe(end);
      expect(readEpochs(disk, dir)).toEqual([{ epoch: 1, start: 0 }]);
      await follower.promote();
      expect(readEpochs(disk, dir)).toEqual([{ epoch: 1, start: 0 }, { epoch: 2, start: end }]);
    } finally {
      await follower.close();
      await master.close();
    }
    // Opened again (as a master now: it was promoted), its next life is epoch 3.
    const again = await MessageStore.open(dir, options as never);
    await again.close();
    expect(readEpochs(disk, dir).at(-1)?.epoch).toBe(3);
  });

  it('a damaged epoch file stops an open with a brokerRole, naming the file', async () => {
    const disk = new SimBackend({ seed: 7 });
    const dir = tmp.make();
    disk.mkdir(path.dirname(epochsPath(dir)));
    disk.writeFileAtomic(epochsPath(dir), Buffer.from('{"version":1,"epochs":[[2,0],[1,9]]}'));
    const network = new SimNetwork({ masterAlive: () => true, followerAlive: () => true });
    const err = await rejection(MessageStore.open(dir, { brokerRole: 'ASYNC_MASTER',
      haListenPort: 0, backend: disk, [REPLICATION_TRANSPORT]: network } as never));
    expect(err).toMatchObject({ code: 'CORRUPT_DATA', path: epochsPath(dir) });
    // Nothing was left open: a store without replication opens the directory.
    const plain = await MessageStore.open(dir, { backend: disk } as never);
    await plain.close();
  });
});
