/**
 * The checkpoint: `<dir>/checkpoint`, how far the commit log, the consume queues and the index are
 * durable, and whether the last run shut down cleanly (RocketMQ's StoreCheckpoint).
 * Recovery reads it at open; flush services update and persist it after their fdatasync.
 *
 * Layout, format version 1, all little-endian. A u64 is two u32, low word first, and holds a
 * JS safe integer (< 2^53); no BigInt.
 *
 *   offset  size   field
 *   0       4      magic 0x4b43_4d50 ("PMCK" as bytes)
 *   4       4      format version (1)
 *   8       4      field count n (10; 8 in files of older builds; at most MAX_FIELDS)
 *   12      8 * n  fields, u64 each, in FIELD_NAMES order:
 *                    0 commitLogFlushedOffset  commit-log bytes before it are durable
 *                    1 tailRecordOffset        start of the last record ending at or before 0
 *                    2 logicsDispatchedOffset  commit-log offset up to which consume-queue and
 *                                              index entries are durable
 *                    3 physicMsgTimestamp      ms, store time of the last durable record
 *                    4 logicsMsgTimestamp      ms, the same for consume queues
 *                    5 indexMsgTimestamp       ms, the same for the index
 *                    6 commitLogMinOffset      retention's minimum commit-log offset
 *                    7 cleanShutdown           0 or 1
 *                    8 commitLogSegmentSize    bytes (0: unknown: an older build's file)
 *                    9 consumeQueueEntriesPerFile  entries (0: unknown)
 *   12+8n   4      xxHash32 (checksum32) of bytes [0, 12 + 8n)
 *
 * Room to grow: a later build appends fields and raises n without changing the version; this
 * build reads fields it does not know as opaque and writes them back unchanged, and reads fields
 * missing from an older file as zero. The version changes only for an incompatible layout, and
 * the framing (magic, version, count, trailing checksum) never changes, so a newer file is told
 * from a damaged one: the checksum is checked before the version.
 *
 * Written in place when the file already has the new bytes' length (the usual case: the length
 * changes only with the field count): one write at offset 0 and an fdatasync. The record is at
 * most IN_PLACE_MAX_BYTES (one disk sector), and a disk writes a sector whole or not at all, so
 * the file holds the old or the new bytes, never a mix, as PostgreSQL's pg_control relies on and
 * RocketMQ's checkpoint is written. Otherwise (a new store, a file of another length) it is
 * written whole with `writeFileAtomic` (tmp, fsync, rename, fsync dir). In place it costs one
 * sync where the other costs two and a journal commit: 0.5 ms against 1.3 at a close here.
 * A stale `checkpoint.tmp` from a crash is never read and is overwritten by a later tmp write.
 *
 * Invariants (asserted on every update, checked on load):
 * - every field is a safe integer >= 0; cleanShutdown is 0 or 1;
 * - tailRecordOffset <= commitLogFlushedOffset;
 * - within one process, commitLogFlushedOffset, logicsDispatchedOffset and commitLogMinOffset never
 *   go backwards, except through `reset` (recovery lowers them after truncating a torn tail).
 */
import path from 'node:path';
import { assert, CorruptDataError, PocketMQError } from '../errors.js';
import { checksum32 } from './checksum.js';
import type { IoBackend } from './io/backend.js';

export const CHECKPOINT_FILE_NAME = 'checkpoint';
export const CHECKPOINT_MAGIC = 0x4b434d50;
export const CHECKPOINT_FORMAT_VERSION = 1;

export interface CheckpointFields {
  readonly commitLogFlushedOffset: number;
  readonly tailRecordOffset: number;
  readonly logicsDispatchedOffset: number;
  readonly physicMsgTimestamp: number;
  readonly logicsMsgTimestamp: number;
  readonly indexMsgTimestamp: number;
  readonly commitLogMinOffset: number;
  readonly cleanShutdown: boolean;
  /**
   * The store's geometry, which its files no longer tell alone: a segment or ConsumeQueue file
   * may be shorter than its size while it grows. 0: not known (an older build's checkpoint).
   */
  readonly commitLogSegmentSize: number;
  readonly consumeQueueEntriesPerFile: number;
}

type NumericField = Exclude<keyof CheckpointFields, 'cleanShutdown'>;

/** On-disk order of the fields; append only. */
const FIELD_NAMES = [
  'commitLogFlushedOffset',
  'tailRecordOffset',
  'logicsDispatchedOffset',
  'physicMsgTimestamp',
  'logicsMsgTimestamp',
  'indexMsgTimestamp',
  'commitLogMinOffset',
  'cleanShutdown',
  'commitLogSegmentSize',
  'consumeQueueEntriesPerFile',
] as const satisfies readonly (keyof CheckpointFields)[];

/** Fields that only move forward outside `reset`. */
const MONOTONIC: readonly NumericField[] = [
  'commitLogFlushedOffset',
  'logicsDispatchedOffset',
  'commitLogMinOffset',
];

/** The longest record written in place: one disk sector, which is written whole or not at all. */
const IN_PLACE_MAX_BYTES = 512;
const HEADER_BYTES = 12;
const FIELD_BYTES = 8;
const CHECKSUM_BYTES = 4;
/** Most fields a checkpoint may carry: a bound on what a damaged count can make us read. */
const MAX_FIELDS = 64;
const U32 = 0x1_0000_0000;

export const CHECKPOINT_DEFAULTS: CheckpointFields = Object.freeze({
  commitLogFlushedOffset: 0,
  tailRecordOffset: 0,
  logicsDispatchedOffset: 0,
  physicMsgTimestamp: 0,
  logicsMsgTimestamp: 0,
  indexMsgTimestamp: 0,
  commitLogMinOffset: 0,
  cleanShutdown: false,
  commitLogSegmentSize: 0,
  consumeQueueEntriesPerFile: 0,
});

if (FIELD_NAMES.length !== Object.keys(CHECKPOINT_DEFAULTS).length) {
  throw new Error('checkpoint: every field has a slot on disk');
}
if (FIELD_NAMES.length > MAX_FIELDS) throw new Error('checkpoint: too many fields');

export class Checkpoint implements CheckpointFields {
  private current: CheckpointFields;
  /** The fields the file on disk holds: as loaded, then as last written. */
  private onDisk: CheckpointFields;
  /** The fields of the last write asked for (as loaded before any): see `latest`. */
  private asked: CheckpointFields;
  private persisting: Promise<void> = Promise.resolve();

  private constructor(
    private readonly backend: IoBackend,
    readonly path: string,
    /** False when there was no checkpoint file at load (a new store): all fields are defaults. */
    readonly existed: boolean,
    fields: CheckpointFields,
    /** Fields of a newer build, kept verbatim and written back. */
    private readonly unknownFields: Buffer,
  ) {
    this.current = fields;
    this.onDisk = fields;
    this.asked = fields;
  }

  /** Read `<dir>/checkpoint`; a missing file gives the defaults with `existed: false`. */
  static load(backend: IoBackend, dir: string): Checkpoint {
    const file = path.join(dir, CHECKPOINT_FILE_NAME);
    const read = readCheckpoint(backend, file);
    if (read === null) {
      return new Checkpoint(backend, file, false, CHECKPOINT_DEFAULTS, Buffer.alloc(0));
    }
    return new Checkpoint(backend, file, true, read.fields, read.unknownFields);
  }

  /** The fields of `<dir>/checkpoint`, or null when it is missing or damaged (never throws). */
  static peek(backend: Pick<IoBackend, 'readFile'>, dir: string): CheckpointFields | null {
    try {
      return readCheckpoint(backend, path.join(dir, CHECKPOINT_FILE_NAME))?.fields ?? null;
    } catch {
      return null;
    }
  }

  get commitLogFlushedOffset(): number { return this.current.commitLogFlushedOffset; }
  get tailRecordOffset(): number { return this.current.tailRecordOffset; }
  get logicsDispatchedOffset(): number { return this.current.logicsDispatchedOffset; }
  get physicMsgTimestamp(): number { return this.current.physicMsgTimestamp; }
  get logicsMsgTimestamp(): number { return this.current.logicsMsgTimestamp; }
  get indexMsgTimestamp(): number { return this.current.indexMsgTimestamp; }
  get commitLogMinOffset(): number { return this.current.commitLogMinOffset; }
  get cleanShutdown(): boolean { return this.current.cleanShutdown; }
  get commitLogSegmentSize(): number { return this.current.commitLogSegmentSize; }
  get consumeQueueEntriesPerFile(): number { return this.current.consumeQueueEntriesPerFile; }

  /** The fields as the file on disk holds them (what a crash now would leave). */
  get durable(): CheckpointFields {
    return this.onDisk;
  }

  /**
   * The fields the file holds once the writes asked for so far are done: the last one asked
   * for. What a write may be skipped against: `durable` lags a write in flight, and a write in
   * place changes the file before its sync ends (a kill then leaves it, synced or not), so a
   * write skipped because `durable` already said the same could leave the file saying more.
   * Should a write in flight fail, the file keeps an older checkpoint: never one that says more.
   */
  get latest(): CheckpointFields {
    return this.asked;
  }

  /** All fields, as a frozen snapshot. */
  fields(): CheckpointFields {
    return this.current;
  }

  /** Change fields in memory; monotonic ones may not go backwards. Durable only after persist. */
  update(partial: Partial<CheckpointFields>): void {
    const next = merge(this.current, partial);
    for (const name of MONOTONIC) {
      assert(next[name] >= this.current[name],
        `checkpoint ${name} went backwards: ${this.current[name]} -> ${next[name]}`);
    }
    this.current = next;
  }

  /** Recovery only: set fields, lower ones included (after truncating a torn tail). */
  reset(partial: Partial<CheckpointFields>): void {
    this.current = merge(this.current, partial);
  }

  /** Write the fields atomically (tmp, fsync, rename, fsync dir). Synchronous: the file is tiny. */
  persist(): void {
    const fields = this.current;
    this.asked = fields;
    this.backend.writeFileAtomic(this.path, encodeCheckpoint(fields, this.unknownFields));
    this.onDisk = fields;
  }

  /**
   * `persist` with the fsync off the main thread, in place where the file has the new bytes'
   * length (see the module's comment): what the flush services call. Writes run one after
   * another, each with the fields as they are when it is called.
   */
  persistAsync(): Promise<void> {
    const fields = this.current;
    const bytes = encodeCheckpoint(fields, this.unknownFields);
    this.asked = fields;
    const write = this.persisting.then(async () => {
      if (bytes.length <= IN_PLACE_MAX_BYTES && this.backend.fileSize(this.path) === bytes.length) {
        await overwriteIn(this.backend, this.path, bytes);
      } else {
        await this.backend.writeFileAtomicAsync(this.path, bytes);
      }
      this.onDisk = fields;
    });
    this.persisting = write.catch(() => undefined);
    return write;
  }
}

/** Reads of a checkpoint that the owner may be writing in place, before it is called damaged. */
const READ_ATTEMPTS = 3;

/**
 * The checkpoint in `file`, or null when there is none. The owner writes it in place, so a
 * reader in another process (a read-only open) can meet that write and read part of each record,
 * which the checksum refuses: it reads again while what it reads changes, and the file is
 * damaged only when two reads in a row give the same refused bytes.
 */
function readCheckpoint(backend: Pick<IoBackend, 'readFile'>, file: string):
  ReturnType<typeof decodeCheckpoint> | null {
  let bytes = backend.readFile(file);
  for (let attempt = 1; ; attempt++) {
    if (bytes === null) return null;
    try {
      return decodeCheckpoint(bytes, file);
    } catch (err) {
      const again = attempt < READ_ATTEMPTS ? backend.readFile(file) : null;
      if (again === null || again.equals(bytes)) throw err;
      bytes = again;
    }
  }
}

/** `bytes` over the file's own, of the same length: one write and an fdatasync. */
async function overwriteIn(backend: IoBackend, file: string, bytes: Buffer): Promise<void> {
  const handle = backend.openSync(file, { sizeBytes: 0, create: false, readOnly: false });
  try {
    handle.write(0, bytes);
    await handle.flush();
  } finally {
    handle.close();
  }
}

function merge(current: CheckpointFields, partial: Partial<CheckpointFields>): CheckpointFields {
  const next: CheckpointFields = Object.freeze({ ...current, ...definedOnly(partial) });
  for (const name of FIELD_NAMES) {
    if (name === 'cleanShutdown') {
      assert(typeof next.cleanShutdown === 'boolean', 'checkpoint cleanShutdown is a boolean');
    } else {
      const value = next[name];
      assert(Number.isSafeInteger(value) && value >= 0,
        `checkpoint ${name} must be a safe integer >= 0, got ${value}`);
    }
  }
  assert(next.tailRecordOffset <= next.commitLogFlushedOffset,
    `checkpoint tailRecordOffset ${next.tailRecordOffset} is past commitLogFlushedOffset ` +
    `${next.commitLogFlushedOffset}`);
  return next;
}

/** `{ x: undefined }` leaves x as it is rather than erasing it. */
function definedOnly(partial: Partial<CheckpointFields>): Partial<CheckpointFields> {
  return Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
}

function encodeCheckpoint(fields: CheckpointFields, unknownFields: Buffer): Buffer {
  assert(unknownFields.length % FIELD_BYTES === 0, 'unknown checkpoint fields are whole u64s');
  const count = FIELD_NAMES.length + unknownFields.length / FIELD_BYTES;
  const bodyEnd = HEADER_BYTES + count * FIELD_BYTES;
  const out = Buffer.alloc(bodyEnd + CHECKSUM_BYTES);
  out.writeUInt32LE(CHECKPOINT_MAGIC, 0);
  out.writeUInt32LE(CHECKPOINT_FORMAT_VERSION, 4);
  out.writeUInt32LE(count, 8);
  FIELD_NAMES.forEach((name, i) => {
    const value = name === 'cleanShutdown' ? Number(fields.cleanShutdown) : fields[name];
    const at = HEADER_BYTES + i * FIELD_BYTES;
    out.writeUInt32LE(value % U32, at);
    out.writeUInt32LE(Math.floor(value / U32), at + 4);
  });
  unknownFields.copy(out, HEADER_BYTES + FIELD_NAMES.length * FIELD_BYTES);
  out.writeUInt32LE(checksum32(out, 0, bodyEnd), bodyEnd);
  return out;
}

function decodeCheckpoint(bytes: Buffer, file: string): {
  fields: CheckpointFields;
  unknownFields: Buffer;
} {
  const corrupt = (why: string): CorruptDataError =>
    new CorruptDataError(`checkpoint ${file} is damaged: ${why}`, { path: file });
  if (bytes.length < HEADER_BYTES + CHECKSUM_BYTES) {
    throw corrupt(`${bytes.length} bytes is shorter than a header and checksum`);
  }
  if (bytes.readUInt32LE(0) !== CHECKPOINT_MAGIC) throw corrupt('bad magic');
  const count = bytes.readUInt32LE(8);
  if (count > MAX_FIELDS) throw corrupt(`field count ${count} is over ${MAX_FIELDS}`);
  const bodyEnd = HEADER_BYTES + count * FIELD_BYTES;
  if (bytes.length !== bodyEnd + CHECKSUM_BYTES) {
    throw corrupt(`${bytes.length} bytes, but ${count} fields need ${bodyEnd + CHECKSUM_BYTES}`);
  }
  if (bytes.readUInt32LE(bodyEnd) !== checksum32(bytes, 0, bodyEnd)) throw corrupt('bad checksum');
  const version = bytes.readUInt32LE(4);
  if (version === 0) throw corrupt('format version 0');
  if (version > CHECKPOINT_FORMAT_VERSION) {
    // Intact but not ours: a newer pocketmq wrote it. Not CorruptDataError: nothing is damaged.
    throw new PocketMQError('CORRUPT_DATA',
      `checkpoint ${file} has format version ${version}, newer than this pocketmq reads ` +
      `(${CHECKPOINT_FORMAT_VERSION}); open the store with the pocketmq that wrote it`,
      { path: file, actual: version, limit: CHECKPOINT_FORMAT_VERSION });
  }
  const u64 = (name: keyof CheckpointFields): number => {
    const i = FIELD_NAMES.indexOf(name);
    if (i >= count) return 0;
    const at = HEADER_BYTES + i * FIELD_BYTES;
    const high = bytes.readUInt32LE(at + 4);
    if (high >= 2 ** 21) throw corrupt(`${name} is past 2^53`);
    return high * U32 + bytes.readUInt32LE(at);
  };
  const clean = u64('cleanShutdown');
  if (clean !== 0 && clean !== 1) throw corrupt(`cleanShutdown is ${clean}, not 0 or 1`);
  const fields: CheckpointFields = Object.freeze({
    commitLogFlushedOffset: u64('commitLogFlushedOffset'),
    tailRecordOffset: u64('tailRecordOffset'),
    logicsDispatchedOffset: u64('logicsDispatchedOffset'),
    physicMsgTimestamp: u64('physicMsgTimestamp'),
    logicsMsgTimestamp: u64('logicsMsgTimestamp'),
    indexMsgTimestamp: u64('indexMsgTimestamp'),
    commitLogMinOffset: u64('commitLogMinOffset'),
    cleanShutdown: clean === 1,
    commitLogSegmentSize: u64('commitLogSegmentSize'),
    consumeQueueEntriesPerFile: u64('consumeQueueEntriesPerFile'),
  });
  if (fields.tailRecordOffset > fields.commitLogFlushedOffset) {
    throw corrupt('tailRecordOffset is past commitLogFlushedOffset');
  }
  const known = Math.min(count, FIELD_NAMES.length);
  const unknownFields = Buffer.from(bytes.subarray(HEADER_BYTES + known * FIELD_BYTES, bodyEnd));
  return { fields, unknownFields };
}
