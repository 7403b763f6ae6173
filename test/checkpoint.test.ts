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
import { SimBackend } from './support/sim-backend.js';

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

  it('writes in place once the file has the record\'s length; another length is replaced whole',
    async () => {
      // An older build's file (8 fields, 80 bytes): the first write replaces it (tmp, rename).
      const eight = reseal(Buffer.concat([persisted().subarray(0, 12 + 8 * 8), Buffer.alloc(4)]),
        (b) => b.writeUInt32LE(8, 8));
      fs.writeFileSync(file, eight);
      const inode = fs.statSync(file).ino;
      const cp = Checkpoint.load(backend, dir);
      cp.update({ commitLogFlushedOffset: SAMPLE.commitLogFlushedOffset + 1 });
      await cp.persistAsync();
      expect(fs.statSync(file).size).toBe(FILE_BYTES);
      const replaced = fs.statSync(file).ino;
      expect(replaced).not.toBe(inode);
      // Same length now: written over the file's own bytes, no temporary file.
      cp.update({ commitLogFlushedOffset: SAMPLE.commitLogFlushedOffset + 2, cleanShutdown: true });
      await cp.persistAsync();
      expect(fs.statSync(file).ino).toBe(replaced);
      expect(fs.existsSync(`${file}.tmp`)).toBe(false);
      // The older file did not know the geometry: it stays unknown (0) until the store sets it.
      expect(Checkpoint.load(backend, dir).fields()).toEqual({ ...SAMPLE,
        commitLogFlushedOffset: SAMPLE.commitLogFlushedOffset + 2, commitLogSegmentSize: 0,
        consumeQueueEntriesPerFile: 0 });
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

describe('Checkpoint read while the owner writes it in place', () => {
  /** A backend whose reads of the checkpoint return `reads` in turn (the last one after). */
  function reading(reads: Buffer[]): { backend: IoBackend; count: () => number } {
    let n = 0;
    const backend = { readFile: () => reads[Math.min(n++, reads.length - 1)]! };
    return { backend: backend as unknown as IoBackend, count: () => n };
  }

  const good = (): Buffer => {
    const cp = Checkpoint.load(new FileBackend(), dir);
    cp.update(SAMPLE);
    cp.persist();
    return fs.readFileSync(file);
  };
  /** The first half of `next` over `prev`: what a read in the middle of the write sees. */
  const torn = (prev: Buffer, next: Buffer): Buffer =>
    Buffer.concat([next.subarray(0, 48), prev.subarray(48)]);

  it('reads again while the bytes change, and gets the record written', () => {
    const before = good();
    const after = reseal(before, (b) => b.writeUInt32LE(4097, 12));
    const { backend, count } = reading([torn(before, after), after]);
    expect(Checkpoint.load(backend, dir).commitLogFlushedOffset)
      .toBe(SAMPLE.commitLogFlushedOffset + 1);
    expect(count()).toBe(2);
    expect(Checkpoint.peek(reading([torn(before, after), after]).backend, dir)
      ?.commitLogFlushedOffset).toBe(SAMPLE.commitLogFlushedOffset + 1);
  });

  it('calls the file damaged when two reads give the same refused bytes, or after three', () => {
    const bad = Buffer.from(good());
    bad[20] = bad[20]! ^ 0xff;
    const same = reading([bad, Buffer.from(bad)]);
    expect(() => Checkpoint.load(same.backend, dir)).toThrow(CorruptDataError);
    expect(same.count()).toBe(2);
    const other = Buffer.from(bad);
    other[21] = other[21]! ^ 0xff;
    const changing = reading([bad, other, bad, other]);
    expect(() => Checkpoint.load(changing.backend, dir)).toThrow(CorruptDataError);
    expect(changing.count()).toBe(3);
    expect(Checkpoint.peek(reading([bad]).backend, dir)).toBeNull();
  });
});

describe('Checkpoint write in place while it is in flight', () => {
  it('says the new record before its sync ends: latest says so at once, durable after',
    async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      let held = false;
      const sim = new SimBackend({ seed: 3, flushDelay: () => (held ? gate : Promise.resolve()) });
      const root = '/store';
      sim.mkdir(root);
      const at = path.join(root, CHECKPOINT_FILE_NAME);
      const cp = Checkpoint.load(sim, root);
      cp.update(SAMPLE);
      await cp.persistAsync();
      const first = cp.fields();
      held = true;
      const moved = SAMPLE.logicsDispatchedOffset + 100;
      cp.update({ logicsDispatchedOffset: moved });
      const writing = cp.persistAsync();
      await new Promise((resolve) => setImmediate(resolve));
      // In flight: the page cache already holds the new record; its sync has not ended.
      expect(Checkpoint.peek(sim, root)!.logicsDispatchedOffset).toBe(moved);
      expect(cp.durable).toBe(first);
      expect(cp.latest.logicsDispatchedOffset).toBe(moved);
      expect(sim.durableBytes(at)).not.toEqual(sim.readFile(at));
      release();
      await writing;
      expect(cp.durable.logicsDispatchedOffset).toBe(moved);
      expect(sim.durableBytes(at)).toEqual(sim.readFile(at));
    });
});
