/**
 * What a read-only open needs before the engine is built: proof that the directory holds a
 * store, the overlay backend over the real one, and the geometry the owner wrote the files with
 * (segment size, ConsumeQueue file size), read from the files themselves, since the owner's
 * options are not on disk and a wrong guess would misplace every offset.
 */
import path from 'node:path';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import { Checkpoint } from './checkpoint.js';
import { CQ_ENTRY_BYTES } from './consume-queue.js';
import { OverlayBackend } from './io/overlay-backend.js';
import { fileNameToOffset } from './mapped-file.js';
import {
  checkStoreDir, resolveStoreOptions, type ResolvedStoreOptions, type StoreOptions,
} from './options.js';
import { chooseBackend } from './store-io.js';

/** The options a read-only open takes: the rest comes from the files. */
export type ReadOnlyStoreOptions = Pick<StoreOptions,
  'backend' | 'clock' | 'logger' | 'onRecoveryProgress'>;

const ALLOWED = new Set(['backend', 'clock', 'logger', 'onRecoveryProgress']);

export function prepareReadOnly(dir: string, options: ReadOnlyStoreOptions): {
  options: ResolvedStoreOptions; backend: OverlayBackend;
} {
  checkStoreDir(dir);
  if (options === null || typeof options !== 'object') {
    throw new PocketMQError('INVALID_OPTION', 'options must be an object', { property: 'options' });
  }
  for (const key of Object.keys(options)) {
    if (!ALLOWED.has(key)) {
      throw new PocketMQError('INVALID_OPTION', `option ${key} is not a read-only store option ` +
        `(${[...ALLOWED].join(', ')}); the rest is read from the files`, { property: key });
    }
  }
  const first = resolveStoreOptions(options);
  const base = chooseBackend(first.backend, first.logger);
  const root = path.resolve(dir);
  if (!base.exists(path.join(root, 'commitlog')) && !base.exists(path.join(root, 'checkpoint'))) {
    throw new PocketMQError('STORE_NOT_FOUND', `${root} holds no pocketmq store`, { path: root });
  }
  const found = detectGeometry(base, root);
  const geometry: StoreOptions = {};
  if (found.segmentSizeBytes !== null) geometry.commitLogSegmentSize = found.segmentSizeBytes;
  if (found.entriesPerFile !== null) geometry.consumeQueueEntriesPerFile = found.entriesPerFile;
  const resolved = resolveStoreOptions({ ...options, ...geometry, backend: base });
  return { options: resolved, backend: new OverlayBackend(base) };
}

/** The geometry an existing store's files were made with; null where there are no files. */
export interface FoundGeometry {
  readonly segmentSizeBytes: number | null;
  /** True when two segments pin the size; false when it is the size of the only segment. */
  readonly segmentSizeExact: boolean;
  readonly entriesPerFile: number | null;
}

export function detectGeometry(base: Lister, root: string): FoundGeometry {
  const dir = path.join(root, 'commitlog');
  const starts = base.readdir(dir).map(fileNameToOffset)
    .filter((n): n is number => n !== null).sort((a, b) => a - b);
  // Files that grow do not tell their size: the checkpoint does (two segments still pin it).
  const cp = Checkpoint.peek(base, root);
  const recorded = starts.length < 2 && cp !== null && cp.commitLogSegmentSize > 0;
  return {
    segmentSizeBytes: recorded ? checkedSegmentSize(cp.commitLogSegmentSize, dir)
      : segmentSize(base, dir, starts),
    segmentSizeExact: starts.length >= 2 || recorded,
    entriesPerFile: cp !== null && cp.consumeQueueEntriesPerFile > 0
      ? cp.consumeQueueEntriesPerFile
      : consumeQueueEntries(base, path.join(root, 'consumequeue')),
  };
}

/**
 * Options an owner's open must use on an existing store: the files' geometry where the option
 * was left out; an option that contradicts the files is refused (a wrong segment size would
 * misplace every offset). A single segment shorter than the option is a short newest segment
 * (it is grown); longer, the option is wrong.
 */
export function geometryForOpen(base: Lister, root: string, options: StoreOptions): StoreOptions {
  const found = detectGeometry(base, root);
  const out: StoreOptions = {};
  const size = found.segmentSizeBytes;
  const given = options.commitLogSegmentSize;
  if (size !== null && (found.segmentSizeExact || given === undefined || size > given)) {
    if (given !== undefined && given !== size) {
      throw new PocketMQError('INVALID_OPTION', `option commitLogSegmentSize is ${given}, but ` +
        `the store in ${root} was made with segments of ${size} bytes; leave the option out ` +
        'to use the files\' size', { property: 'commitLogSegmentSize', actual: size });
    }
    out.commitLogSegmentSize = size;
  }
  const entries = found.entriesPerFile;
  const givenEntries = options.consumeQueueEntriesPerFile;
  if (entries !== null) {
    if (givenEntries !== undefined && givenEntries !== entries) {
      throw new PocketMQError('INVALID_OPTION', `option consumeQueueEntriesPerFile is ` +
        `${givenEntries}, but the store in ${root} was made with ${entries} entries per ` +
        'file; leave the option out to use the files\' size',
      { property: 'consumeQueueEntriesPerFile', actual: entries });
    }
    out.consumeQueueEntriesPerFile = entries;
  }
  return out;
}

type Lister = Pick<OverlayBackend, 'readdir' | 'fileSize' | 'readFile'>;

/** The distance between the first two segments, or the size of the only one. */
function segmentSize(base: Lister, dir: string, starts: number[]): number | null {
  let size: number;
  if (starts.length >= 2) {
    size = starts[1]! - starts[0]!;
  } else if (starts.length === 1) {
    // One segment: its size bounds reads only (nothing rolls read-only); a short file reads
    // as zeros past its end.
    const bytes = base.fileSize(path.join(dir, String(starts[0]).padStart(20, '0')));
    size = Math.max(limits.minSegmentBytes, Math.ceil(bytes / 4096) * 4096);
  } else {
    return null;
  }
  return checkedSegmentSize(size, dir);
}

function checkedSegmentSize(size: number, dir: string): number {
  if (size < limits.minSegmentBytes || size > limits.maxSegmentBytes || size % 4096 !== 0) {
    throw new PocketMQError('CORRUPT_DATA', `commit-log segments in ${dir} are ${size} bytes ` +
      'apart, not a segment size', { path: dir, actual: size });
  }
  return size;
}

/** Entries per ConsumeQueue file, from the first such file found. */
function consumeQueueEntries(base: Lister, root: string): number | null {
  for (const topic of base.readdir(root)) {
    for (const queueId of base.readdir(path.join(root, topic))) {
      const dir = path.join(root, topic, queueId);
      const name = base.readdir(dir).find((n) => fileNameToOffset(n) !== null);
      if (name === undefined) continue;
      const bytes = base.fileSize(path.join(dir, name));
      if (bytes > 0 && bytes % CQ_ENTRY_BYTES === 0) return bytes / CQ_ENTRY_BYTES;
    }
  }
  return null;
}
