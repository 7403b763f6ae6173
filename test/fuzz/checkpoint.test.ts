/**
 * Fuzzing the checkpoint reader (lib/store/checkpoint.ts Checkpoint.load): random bytes and
 * damaged checkpoints, with or without a checksum made to match, load with fields that keep the
 * checkpoint's invariants or fail with CORRUPT_DATA; an intact checkpoint loads what was saved.
 */
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Checkpoint, CHECKPOINT_FILE_NAME, type CheckpointFields,
} from '../../lib/store/checkpoint.js';
import { checksum32 } from '../../lib/store/checksum.js';
import { useTempDirs } from '../support/backends.js';
import { SimBackend } from '../support/sim-backend.js';
import { coded, fuzz } from './fuzz-support.js';

const tmp = useTempDirs('pmq-fuzz-');

const fieldsArb: fc.Arbitrary<CheckpointFields> = fc.record({
  commitLogFlushedOffset: fc.maxSafeNat(),
  tail: fc.double({ min: 0, max: 1, noNaN: true }),
  logicsDispatchedOffset: fc.maxSafeNat(),
  physicMsgTimestamp: fc.maxSafeNat(),
  logicsMsgTimestamp: fc.maxSafeNat(),
  indexMsgTimestamp: fc.maxSafeNat(),
  commitLogMinOffset: fc.maxSafeNat(),
  cleanShutdown: fc.boolean(),
  commitLogSegmentSize: fc.maxSafeNat(),
  consumeQueueEntriesPerFile: fc.maxSafeNat(),
}).map(({ tail, ...f }) => ({
  ...f, tailRecordOffset: Math.floor(tail * f.commitLogFlushedOffset),
}));

type Edit =
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'cut'; keep: number }
  | { kind: 'grow'; bytes: Uint8Array }
  | { kind: 'count'; fields: number };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  // Header words (magic, version, count) and the high words of the fields.
  fc.record({ kind: fc.constant('u32' as const),
    at: fc.oneof(fc.constantFrom(0, 4, 8, 16, 24, 72), fc.nat()),
    value: fc.oneof(fc.constantFrom(0, 1, 2, 7, 9, 64, 65, 2 ** 21, 0xffff_ffff),
      fc.nat({ max: 0xffff_ffff })) }),
  fc.record({ kind: fc.constant('cut' as const), keep: fc.nat() }),
  fc.record({ kind: fc.constant('grow' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
  // A file of an older or newer build: n fields, the body cut or padded to fit them.
  fc.record({ kind: fc.constant('count' as const), fields: fc.nat({ max: 70 }) }),
);

function edit(file: Buffer, edits: readonly Edit[]): Buffer {
  let out: Buffer = Buffer.from(file);
  for (const e of edits) {
    if (e.kind === 'count') out = withFieldCount(out, e.fields);
    else if (e.kind === 'cut') out = Buffer.from(out.subarray(0, e.keep % (out.length + 1)));
    else if (e.kind === 'grow') out = Buffer.concat([out, e.bytes]);
    else if (out.length === 0) continue;
    else if (e.kind === 'byte') out[e.at % out.length] = e.value;
    else if (out.length >= 4) out.writeUInt32LE(e.value, (e.at % (out.length - 3)) & ~3);
  }
  return out;
}

function withFieldCount(file: Buffer, fields: number): Buffer {
  const out = Buffer.alloc(12 + 8 * fields + 4);
  file.copy(out, 0, 0, Math.max(0, Math.min(file.length - 4, out.length - 4)));
  out.writeUInt32LE(fields, 8);
  return out;
}

/** Make the trailing checksum match whatever the bytes now say, as a writer would. */
function reseal(bytes: Buffer): void {
  if (bytes.length >= 16) {
    bytes.writeUInt32LE(checksum32(bytes, 0, bytes.length - 4), bytes.length - 4);
  }
}

function setup(): { disk: SimBackend; dir: string; file: string } {
  const disk = new SimBackend();
  const dir = tmp.make();
  disk.mkdir(dir);
  return { disk, dir, file: path.join(dir, CHECKPOINT_FILE_NAME) };
}

/** What a loaded checkpoint must hold, whatever its file said. */
function expectSane(fields: CheckpointFields): void {
  for (const [name, value] of Object.entries(fields)) {
    if (name === 'cleanShutdown') expect(typeof value).toBe('boolean');
    else expect(Number.isSafeInteger(value) && (value as number) >= 0, name).toBe(true);
  }
  expect(fields.tailRecordOffset).toBeLessThanOrEqual(fields.commitLogFlushedOffset);
}

describe('checkpoint fuzzing', () => {
  it('a damaged checkpoint loads sane fields or fails with CORRUPT_DATA', () => {
    const { disk, dir, file } = setup();
    fc.assert(fc.property(fieldsArb, fc.array(editArb, { minLength: 1, maxLength: 4 }),
      fc.boolean(), (fields, edits, sealAgain) => {
        disk.unlink(file);
        const saved = Checkpoint.load(disk, dir);
        saved.reset(fields);
        saved.persist();
        const good = disk.readFile(file)!;
        const bad = edit(good, edits);
        if (sealAgain) reseal(bad);
        disk.writeFile(file, bad);
        const loaded = coded(['CORRUPT_DATA'], () => Checkpoint.load(disk, dir));
        if (!loaded.ok) return;
        expectSane(loaded.value.fields());
        if (bad.equals(good)) expect(loaded.value.fields()).toEqual(fields);
        // What loads persists and loads again the same; a file with every field this build
        // knows is written back byte for byte, the fields of a newer build included.
        loaded.value.persist();
        const again = Checkpoint.load(disk, dir);
        expect(again.fields()).toEqual(loaded.value.fields());
        if (bad.readUInt32LE(8) >= 8) expect(disk.readFile(file)!.equals(bad)).toBe(true);
      }), fuzz(0x5eed_0201, 300));
  });

  it('random bytes load or fail with CORRUPT_DATA', () => {
    const { disk, dir, file } = setup();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, sealAgain) => {
      const buf = Buffer.from(bytes);
      if (sealAgain) reseal(buf);
      disk.writeFile(file, buf);
      const loaded = coded(['CORRUPT_DATA'], () => Checkpoint.load(disk, dir));
      if (loaded.ok) expectSane(loaded.value.fields());
    }), fuzz(0x5eed_0202, 300));
  });
});
