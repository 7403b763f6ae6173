import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CorruptDataError, PocketMQError } from '../lib/errors.js';
import {
  Checkpoint,
  CHECKPOINT_DEFAULTS,
  CHECKPOINT_FILE_NAME,
  type CheckpointFields,
} from '../lib/store/checkpoint.js';
import { checksum32 } from '../lib/store/checksum.js';
import type { IoBackend } from '../lib/store/io/backend.js';
import { FileBackend } from '../lib/store/io/file-backend.js';
import { MmapBackend } from '../lib/store/io/mmap-backend.js';
import { loadNative } from '../lib/store/io/native.js';

const SAMPLE: CheckpointFields = {
  commitLogFlushedOffset: 2 ** 40 + 4096,
  tailRecordOffset: 2 ** 40 + 3000,
  logicsDispatchedOffset: 2 ** 33 + 7,
  physicMsgTimestamp: 1_700_000_000_123,
  logicsMsgTimestamp: 1_700_000_000_100,
  indexMsgTimestamp: 1_700_000_000_050,
  commitLogMinOffset: 2 ** 30,
  cleanShutdown: true,
  commitLogSegmentSize: 64 * 2 ** 20,
  consumeQueueEntriesPerFile: 102_400,
};

/** Header (12) + 10 fields (80) + checksum (4). */
const FILE_BYTES = 96;

let dir: string;
let file: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-'));
  file = path.join(dir, CHECKPOINT_FILE_NAME);
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function codeOf(fn: () => unknown): { err: PocketMQError; code: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    return { err: err as PocketMQError, code: (err as PocketMQError).code };
  }
  throw new Error('expected a PocketMQError');
}

/** Rewrite header words of the file on disk and seal it with a fresh checksum. */
function reseal(bytes: Buffer, edit: (b: Buffer) => void): Buffer {
  const out = Buffer.from(bytes);
  edit(out);
  out.writeUInt32LE(checksum32(out, 0, out.length - 4), out.length - 4);
  return out;
}

describe.each([
  ['file', (): IoBackend => new FileBackend()],
  ['mmap', (): IoBackend => new MmapBackend(loadNative().mmap!)],
] as const)('Checkpoint on the %s backend', (_kind, makeBackend) => {
  let backend: IoBackend;
  beforeEach(() => {
    backend = makeBackend();
  });

  function persisted(fields: Partial<CheckpointFields> = SAMPLE): Buffer {
    const cp = Checkpoint.load(backend, dir);
    cp.update(fields);
    cp.persist();
    return fs.readFileSync(file);
  }

  it('gives the defaults for a missing file, and does not create one', () => {
    const cp = Checkpoint.load(backend, dir);
    expect(cp.existed).toBe(false);
    expect(cp.fields()).toEqual(CHECKPOINT_DEFAULTS);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('round-trips every field, u64s past 2^32 included', () => {
    const bytes = persisted();
    expect(bytes.length).toBe(FILE_BYTES);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const cp = Checkpoint.load(backend, dir);
    expect(cp.existed).toBe(true);
    expect(cp.fields()).toEqual(SAMPLE);
    expect(cp.commitLogFlushedOffset).toBe(SAMPLE.commitLogFlushedOffset);
    expect(cp.cleanShutdown).toBe(true);
  });

  it('persists off the main thread, in call order, the last call winning', async () => {
    const cp = Checkpoint.load(backend, dir);
    cp.update({ ...SAMPLE, commitLogFlushedOffset: 100, tailRecordOffset: 50 });
    const first = cp.persistAsync();
    cp.update({ commitLogFlushedOffset: 200, tailRecordOffset: 150 });
    const second = cp.persistAsync();
    await Promise.all([first, second]);
    const again = Checkpoint.load(backend, dir);
    expect([again.commitLogFlushedOffset, again.tailRecordOffset]).toEqual([200, 150]);
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('reports any flipped byte as CORRUPT_DATA naming the path', () => {
    const bytes = persisted();
    for (let i = 0; i < bytes.length; i++) {
      const bad = Buffer.from(bytes);
      bad[i]! ^= 0x10;
      fs.writeFileSync(file, bad);
      const { err } = codeOf(() => Checkpoint.load(backend, dir));
      expect(err, `byte ${i}`).toBeInstanceOf(CorruptDataError);
      expect(err.path).toBe(file);
    }
  });

  it('reports a truncated or extended file as CORRUPT_DATA', () => {
    const bytes = persisted();
    for (const length of [0, 1, 15, 16, FILE_BYTES - 4, FILE_BYTES - 1]) {
      fs.writeFileSync(file, bytes.subarray(0, length));
      expect(codeOf(() => Checkpoint.load(backend, dir)).err).toBeInstanceOf(CorruptDataError);
    }
    fs.writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(1)]));
    expect(codeOf(() => Checkpoint.load(backend, dir)).err).toBeInstanceOf(CorruptDataError);
  });

  it('refuses an intact file of a newer format version with a coded error', () => {
    fs.writeFileSync(file, reseal(persisted(), (b) => b.writeUInt32LE(2, 4)));
    const { err, code } = codeOf(() => Checkpoint.load(backend, dir));
    expect(err).not.toBeInstanceOf(CorruptDataError);
    expect(code).toBe('CORRUPT_DATA');
    expect(err.actual).toBe(2);
    expect(err.message).toMatch(/newer/);
  });

  it('ignores a stale .tmp from a crash and overwrites it on persist', () => {
    persisted();
    fs.writeFileSync(`${file}.tmp`, 'half a checkpoint');
    const cp = Checkpoint.load(backend, dir);
    expect(cp.fields()).toEqual(SAMPLE);
    const moved = SAMPLE.commitLogFlushedOffset + 100;
    cp.update({ commitLogFlushedOffset: moved, cleanShutdown: false });
    cp.persist();
    expect(fs.existsSync(`${file}.tmp`)).toBe(false);
    expect(Checkpoint.load(backend, dir).commitLogFlushedOffset).toBe(moved);
  });

  it('refuses to move monotonic offsets backwards unless reset', () => {
    const cp = Checkpoint.load(backend, dir);
    cp.update(SAMPLE);
    for (const name of ['commitLogFlushedOffset', 'logicsDispatchedOffset', 'commitLogMinOffset']) {
      const lower = { [name]: SAMPLE[name as keyof CheckpointFields] as number - 1 };
      expect(codeOf(() => cp.update(lower)).code, name).toBe('ASSERTION_FAILED');
    }
    expect(cp.fields()).toEqual(SAMPLE);
    cp.update({ physicMsgTimestamp: 1 });
    cp.reset({ commitLogFlushedOffset: 4096, tailRecordOffset: 4000, logicsDispatchedOffset: 0 });
    cp.persist();
    expect(Checkpoint.load(backend, dir).fields()).toMatchObject({
      commitLogFlushedOffset: 4096, tailRecordOffset: 4000, logicsDispatchedOffset: 0,
      physicMsgTimestamp: 1,
    });
  });

  it('asserts field values: safe integers, tail within the flushed bytes', () => {
    const cp = Checkpoint.load(backend, dir);
    expect(codeOf(() => cp.update({ physicMsgTimestamp: -1 })).code).toBe('ASSERTION_FAILED');
    expect(codeOf(() => cp.update({ indexMsgTimestamp: 1.5 })).code).toBe('ASSERTION_FAILED');
    expect(codeOf(() => cp.update({ tailRecordOffset: 10 })).code).toBe('ASSERTION_FAILED');
    expect(codeOf(() => cp.reset({ commitLogMinOffset: 2 ** 53 })).code).toBe('ASSERTION_FAILED');
    expect(cp.fields()).toEqual(CHECKPOINT_DEFAULTS);
  });

  it('keeps fields of a newer build and reads fields an older file lacks as zero', () => {
    const extra = Buffer.from('0102030405060708', 'hex');
    const grown = reseal(Buffer.concat([persisted().subarray(0, FILE_BYTES - 4), extra,
      Buffer.alloc(4)]), (b) => b.writeUInt32LE(11, 8));
    fs.writeFileSync(file, grown);
    const cp = Checkpoint.load(backend, dir);
    expect(cp.fields()).toEqual(SAMPLE);
    cp.update({ indexMsgTimestamp: SAMPLE.indexMsgTimestamp + 1 });
    cp.persist();
    const rewritten = fs.readFileSync(file);
    expect(rewritten.readUInt32LE(8)).toBe(11);
    expect(rewritten.subarray(FILE_BYTES - 4, FILE_BYTES + 4)).toEqual(extra);

    // A file of a build before the geometry fields: 8 fields, the geometry unknown (0).
    const noGeometry = { ...SAMPLE, commitLogSegmentSize: 0, consumeQueueEntriesPerFile: 0 };
    const eight = reseal(Buffer.concat([grown.subarray(0, 12 + 8 * 8), Buffer.alloc(4)]),
      (b) => b.writeUInt32LE(8, 8));
    fs.writeFileSync(file, eight);
    expect(Checkpoint.load(backend, dir).fields()).toEqual(noGeometry);
    const older = reseal(Buffer.concat([grown.subarray(0, 12 + 7 * 8), Buffer.alloc(4)]),
      (b) => b.writeUInt32LE(7, 8));
    fs.writeFileSync(file, older);
    expect(Checkpoint.load(backend, dir).fields()).toEqual({ ...noGeometry, cleanShutdown: false });
  });
});
