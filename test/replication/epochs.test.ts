/**
 * Master epochs (lib/replication/epochs.ts): the file loads what was written, a damaged one is
 * CORRUPT_DATA naming its path, a new master life replaces epochs that kept no record, and the
 * cut two epoch lists give is where the logs part.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  beginEpoch, epochCut, epochsPath, readEpochs, writeEpochs,
} from '../../lib/replication/epochs.js';
import { limits } from '../../lib/limits.js';
import { NodeFsBackend } from '../../lib/store/io/file-backend.js';
import { useTempDirs } from '../support/backends.js';
import { SimBackend } from '../support/sim-backend.js';
import { errorOf } from '../support/errors.js';

const tmp = useTempDirs();
const e = (epoch: number, start: number): { epoch: number; start: number } => ({ epoch, start });

describe('the epoch file', () => {
  it('is empty when missing; loads what was written, after a power cut too', async () => {
    const backend = new SimBackend({ seed: 3 });
    const dir = tmp.make();
    expect(readEpochs(backend, dir)).toEqual([]);
    await writeEpochs(backend, dir, [e(1, 0), e(2, 4096)]);
    await writeEpochs(backend, dir, [e(1, 0), e(2, 4096), e(5, 9000)], true);
    backend.crash({ mode: 'drop-unflushed' });
    expect(readEpochs(backend, dir)).toEqual([e(1, 0), e(2, 4096), e(5, 9000)]);
  });

  it('is CORRUPT_DATA naming its path when damaged', async () => {
    const backend = new SimBackend({ seed: 4 });
    const dir = tmp.make();
    await writeEpochs(backend, dir, [e(1, 0)], true);
    const file = epochsPath(dir);
    expect(file).toBe(path.join(dir, 'replication', 'epochs.json'));
    const cases: [string, RegExp][] = [
      ['{"version":1,"epochs":[[1,0]', /not JSON/],
      ['{"version":9,"epochs":[]}', /not a version 1 epoch list/],
      ['{"version":1,"epochs":[[1,0],[1,50]]}', /entry 1 does not follow/],
      ['{"version":1,"epochs":[[1,50],[2,50]]}', /entry 1 does not follow/],
      ['{"version":1,"epochs":[[1,-1]]}', /entry 0 is not \[epoch, start\]/],
      ['{"version":1,"epochs":[[1,0.5]]}', /entry 0 is not \[epoch, start\]/],
    ];
    for (const [text, why] of cases) {
      backend.writeFileAtomic(file, Buffer.from(text));
      const err = errorOf(() => readEpochs(backend, dir));
      expect(err, text).toMatchObject({ code: 'CORRUPT_DATA', path: file });
      expect(err.message, text).toContain(file);
      expect(err.message, text).toMatch(why);
    }
  });

  it('is written as a plain file others can read', async () => {
    const dir = tmp.make();
    await writeEpochs(new NodeFsBackend(), dir, [e(1, 0), e(2, 70)]);
    expect(JSON.parse(fs.readFileSync(epochsPath(dir), 'utf8')))
      .toEqual({ version: 1, epochs: [[1, 0], [2, 70]] });
  });
});

describe('a new master life', () => {
  it('starts the next epoch at the log end, replacing epochs that kept no record', () => {
    expect(beginEpoch([], 0, 0)).toEqual([e(1, 0)]);
    expect(beginEpoch([e(1, 0)], 500, 0)).toEqual([e(1, 0), e(2, 500)]);
    // Epoch 2 started at 500; a power cut lost everything it wrote and more.
    expect(beginEpoch([e(1, 0), e(2, 500)], 500, 0)).toEqual([e(1, 0), e(3, 500)]);
    expect(beginEpoch([e(1, 0), e(2, 500)], 300, 0)).toEqual([e(1, 0), e(3, 300)]);
  });

  it('keeps the epoch of the log\'s first offset, not those wholly below it, nor too many',
    () => {
      expect(beginEpoch([e(1, 0), e(2, 100), e(3, 200)], 900, 150))
        .toEqual([e(2, 100), e(3, 200), e(4, 900)]);
      const many = Array.from({ length: limits.maxReplicationEpochs }, (_, i) => e(i + 1, i));
      const next = beginEpoch(many, 10_000, 0);
      expect(next).toHaveLength(limits.maxReplicationEpochs);
      expect(next.at(-1)).toEqual(e(limits.maxReplicationEpochs + 1, 10_000));
      expect(next[0]).toEqual(e(2, 1));
    });
});

describe('where two logs part, by their epochs', () => {
  it('at the end of the largest epoch both hold, on the side where it ends first', () => {
    const master = [e(1, 0), e(2, 1000), e(4, 5000)];
    // The master crashed in epoch 2 at 5000, losing what it wrote past it: the follower cuts.
    expect(epochCut([e(1, 0), e(2, 1000)], 6000, master, 7000)).toBe(5000);
    // The follower is behind in epoch 2: nothing to cut.
    expect(epochCut([e(1, 0), e(2, 1000)], 4000, master, 7000)).toBe(4000);
    // The follower was a master itself in epoch 3 (not the master's): cut where it began.
    expect(epochCut([e(1, 0), e(2, 1000), e(3, 3000)], 6000, master, 7000)).toBe(3000);
    // Same epoch, same life: the follower's end.
    expect(epochCut([e(1, 0), e(2, 1000), e(4, 5000)], 6000, master, 7000)).toBe(6000);
  });

  it('cannot tell without an epoch in common', () => {
    expect(epochCut([], 6000, [e(1, 0)], 7000)).toBeNull();
    expect(epochCut([e(1, 0)], 6000, [], 7000)).toBeNull();
    expect(epochCut([e(7, 0)], 6000, [e(1, 0), e(2, 10)], 7000)).toBeNull();
    // One number, two lives (another start): not the same epoch; an older one decides.
    expect(epochCut([e(2, 50)], 6000, [e(1, 0), e(2, 10)], 7000)).toBeNull();
    expect(epochCut([e(1, 0), e(2, 50)], 6000, [e(1, 0), e(2, 10)], 7000)).toBe(10);
  });
});
