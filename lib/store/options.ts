/**
 * Store options: one type, one frozen defaults object, one resolver that validates once and
 * names the bad property. Defaults follow RocketMQ's MessageStoreConfig where it
 * makes sense in one process, and are smaller where RocketMQ sizes for a dedicated broker.
 */
import { debuglog } from 'node:util';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { IoBackend } from './io/backend.js';
import type { AddonLoader } from './io/native.js';
import {
  checkFunctionOrNull, checkInt, checkKnownOptions, checkMethods, checkRatio, invalidOption,
  optionsRecord,
} from '../validate.js';

export type FlushDiskType = 'ASYNC_FLUSH' | 'SYNC_FLUSH';

/** The `backend` store option: see StoreOptions.backend. */
export type BackendChoice = 'auto' | 'mmap' | 'file' | IoBackend;

/**
 * Where the store says what it does and what went wrong (the `logger` store option). Each
 * method takes one preformatted string, so a pino logger (or a pino child) fits as it is, and
 * so does `console`: `MessageStore.open(dir, { logger: pino() })`. Methods are called on the
 * object (`logger.warn(msg)`), never detached, so loggers that rely on `this` work.
 *
 * The default logger prints nothing unless the process runs with `NODE_DEBUG=pocketmq`: then
 * every level goes to stderr through `util.debuglog('pocketmq')`. A library does not print on
 * its own (as pino and undici); inject a logger to see warnings and errors in production.
 */
export interface Logger {
  /** Lifecycle detail: open and recovery summaries, rebalance results. */
  debug(message: string): void;
  info(message: string): void;
  /** Something failed and pocketmq carried on (a oneway send, a fallback backend). */
  warn(message: string): void;
  /** Something failed that the application should know of (a listener threw, a stop). */
  error(message: string): void;
}

export interface RecoveryProgress {
  /** Commit-log bytes checked so far, and how many there are to check. */
  readonly checkedBytes: number;
  readonly totalBytes: number;
}

export interface StoreOptions {
  /** SYNC_FLUSH: an append resolves only after fdatasync. @default 'ASYNC_FLUSH' */
  flushDiskType?: FlushDiskType;
  /** SYNC_FLUSH waits at most this long, then reports FLUSH_DISK_TIMEOUT. @default 5000 */
  syncFlushTimeoutMs?: number;
  /** Commit-log segment size in bytes. @default 64 MiB */
  commitLogSegmentSize?: number;
  /** Largest body in bytes. @default 4 MiB */
  maxMessageSize?: number;
  /** Queues of a topic created on first send (used by the broker layer). @default 4 */
  defaultTopicQueueNums?: number;
  /** ASYNC_FLUSH: commit-log flush cadence. @default 500 */
  flushIntervalMs?: number;
  /** ASYNC_FLUSH: flush only when at least this many 4 KiB pages are dirty. @default 4 */
  flushLeastPages?: number;
  /** ASYNC_FLUSH: flush whatever is dirty at least this often. @default 10000 */
  flushThoroughIntervalMs?: number;
  /** ConsumeQueue, index and checkpoint flush cadence. @default 1000 */
  flushConsumeQueueIntervalMs?: number;
  /** Entries per ConsumeQueue file (20 bytes each). @default 102400 (2,000 KiB) */
  consumeQueueEntriesPerFile?: number;
  /** Hash slots per index file. @default 65536 */
  indexHashSlots?: number;
  /** Entries per index file. @default 262144 */
  indexMaxEntries?: number;
  /** Commit-log segments older than this are deleted. @default 72 */
  fileReservedTimeHours?: number;
  /** Above this disk use, segments are deleted before they expire. @default 0.75 */
  diskMaxUsedSpaceRatio?: number;
  /** Above this disk use, appends fail with DISK_FULL. @default 0.9 */
  diskFullRatio?: number;
  /** Retention and disk checks run this often. @default 10000 */
  cleanResourceIntervalMs?: number;
  /**
   * SYNC_FLUSH: appends waiting for their flush at once. Past it an append is refused, nothing
   * stored, with BUSY (retriable: producers try again). @default 1000000
   */
  maxPendingFlushRequests?: number;
  /**
   * 'auto': memory-mapped files when the mmap addon loads, plain files (pread/pwrite/fdatasync)
   * when it does not and under Electron; 'mmap': mmap whenever the addon loads (Electron too);
   * 'file': plain files; or a backend object (tests: the simulated disk). @default 'auto'
   */
  backend?: BackendChoice;
  clock?: Clock;
  /** Receives debug/info/warn/error lines; a pino logger fits as is. @default debugLogger */
  logger?: Logger;
  /** Called as recovery checks the commit log. */
  onRecoveryProgress?: (progress: RecoveryProgress) => void;
  /**
   * For tests only, not for applications: loads the native addons in place of `require`
   * (`@riaskov/mmap-io`, `fs-ext`); a loader that throws simulates an addon that failed to
   * build. Applications leave it out.
   */
  addonLoader?: AddonLoader;
}

type NullableOptions = 'onRecoveryProgress' | 'addonLoader';

export type ResolvedStoreOptions = Readonly<Required<Omit<StoreOptions, NullableOptions>>> & {
  readonly onRecoveryProgress: ((progress: RecoveryProgress) => void) | null;
  readonly addonLoader: AddonLoader | null;
};

const debug = debuglog('pocketmq');

/** The default logger: `util.debuglog('pocketmq')`, silent unless NODE_DEBUG names pocketmq. */
export const debugLogger: Logger = Object.freeze({
  debug: (message: string) => debug('debug %s', message),
  info: (message: string) => debug('info %s', message),
  warn: (message: string) => debug('warn %s', message),
  error: (message: string) => debug('error %s', message),
});

export const storeDefaults = Object.freeze({
  flushDiskType: 'ASYNC_FLUSH' as FlushDiskType,
  syncFlushTimeoutMs: 5000,
  commitLogSegmentSize: 64 * 2 ** 20,
  maxMessageSize: limits.maxBodyBytes,
  defaultTopicQueueNums: 4,
  flushIntervalMs: 500,
  flushLeastPages: 4,
  flushThoroughIntervalMs: 10_000,
  flushConsumeQueueIntervalMs: 1000,
  consumeQueueEntriesPerFile: 102_400,
  indexHashSlots: 65_536,
  indexMaxEntries: 262_144,
  fileReservedTimeHours: 72,
  diskMaxUsedSpaceRatio: 0.75,
  diskFullRatio: 0.9,
  cleanResourceIntervalMs: 10_000,
  maxPendingFlushRequests: limits.maxPendingFlushRequests,
  backend: 'auto' as BackendChoice,
  clock: systemClock,
  logger: debugLogger,
});

/** Why a limit is what it is, for the options whose bound users run into. */
const BOUND_NOTES: Readonly<Record<string, string>> = {
  maxMessageSize: ' (at most 4 MiB: the largest body a record holds, RocketMQ\'s default limit)',
  defaultTopicQueueNums: ` (at most ${limits.maxQueuesPerTopic} queues per topic)`,
  commitLogSegmentSize: ' (64 KiB to 1 GiB)',
};

/** The integer options and their ranges. */
const INT_RANGES: readonly (readonly [keyof StoreOptions, number, number])[] = [
  ['syncFlushTimeoutMs', 1, 3_600_000],
  ['commitLogSegmentSize', limits.minSegmentBytes, limits.maxSegmentBytes],
  ['maxMessageSize', 1, limits.maxBodyBytes],
  ['defaultTopicQueueNums', 1, limits.maxQueuesPerTopic],
  ['flushIntervalMs', 1, 3_600_000],
  ['flushLeastPages', 0, 1_000_000],
  ['flushThoroughIntervalMs', 1, 86_400_000],
  ['flushConsumeQueueIntervalMs', 1, 3_600_000],
  ['consumeQueueEntriesPerFile', 16, 10_000_000],
  ['indexHashSlots', 16, 50_000_000],
  ['indexMaxEntries', 16, 50_000_000],
  ['cleanResourceIntervalMs', 1, 86_400_000],
  ['maxPendingFlushRequests', 1, limits.maxPendingFlushRequests],
];

const BACKEND_METHODS = ['open', 'openSync', 'exists', 'fileSize', 'readdir', 'mkdir', 'unlink',
  'rmdir', 'readFile', 'writeFileAtomic', 'writeFileAtomicAsync', 'writeFile',
  'diskUsage'] as const;

/** The data directory argument of an open: a non-empty path string. */
export function checkStoreDir(dir: unknown): string {
  if (typeof dir !== 'string' || dir.trim() === '') {
    const got = typeof dir === 'string' ? 'an empty string' : dir === null ? 'null' : typeof dir;
    throw new PocketMQError('INVALID_OPTION', `the data directory (argument dir) must be a ` +
      `path, got ${got}`, { property: 'dir' });
  }
  return dir;
}

export function resolveStoreOptions(options: StoreOptions = {}): ResolvedStoreOptions {
  const defined = optionsRecord(options);
  checkKnownOptions(defined, [...Object.keys(storeDefaults), 'onRecoveryProgress',
    'addonLoader'], 'a store option');
  const o: Record<string, unknown> = { ...storeDefaults, ...defined };
  if (o.flushDiskType !== 'ASYNC_FLUSH' && o.flushDiskType !== 'SYNC_FLUSH') {
    throw invalidOption('flushDiskType', "must be 'ASYNC_FLUSH' or 'SYNC_FLUSH'");
  }
  for (const [key, min, max] of INT_RANGES) checkInt(key, o[key], min, max, BOUND_NOTES[key]);
  if ((o.commitLogSegmentSize as number) % 4096 !== 0) {
    throw invalidOption('commitLogSegmentSize', 'must be a multiple of 4096');
  }
  const hours = o.fileReservedTimeHours;
  if (typeof hours !== 'number' || !(hours >= 0)) {
    throw invalidOption('fileReservedTimeHours', 'must be >= 0');
  }
  checkRatio('diskMaxUsedSpaceRatio', o.diskMaxUsedSpaceRatio);
  checkRatio('diskFullRatio', o.diskFullRatio);
  const b = o.backend;
  if (b !== 'auto' && b !== 'mmap' && b !== 'file') {
    if (b === null || typeof b !== 'object') {
      throw invalidOption('backend', "must be 'auto', 'mmap', 'file' or an IoBackend");
    }
    checkMethods('backend', b, BACKEND_METHODS);
  }
  checkMethods('clock', o.clock, ['now', 'setTimeout', 'clearTimeout']);
  checkMethods('logger', o.logger, ['debug', 'info', 'warn', 'error']);
  o.onRecoveryProgress = checkFunctionOrNull('onRecoveryProgress', defined.onRecoveryProgress);
  o.addonLoader = checkFunctionOrNull('addonLoader', defined.addonLoader);
  const roomForTwo = (o.commitLogSegmentSize as number) / 2 - 4096;
  // A small segment lowers the default body limit instead of refusing the segment size.
  if (defined.maxMessageSize === undefined) {
    o.maxMessageSize = Math.min(limits.maxBodyBytes, roomForTwo);
  }
  if ((o.maxMessageSize as number) > roomForTwo) {
    throw invalidOption('maxMessageSize', `is ${String(o.maxMessageSize)} bytes; with ` +
      `commitLogSegmentSize ${String(o.commitLogSegmentSize)} it can be at most ${roomForTwo} ` +
      '(two records must fit in a segment): raise commitLogSegmentSize or lower maxMessageSize',
    roomForTwo, o.maxMessageSize);
  }
  return Object.freeze(o) as unknown as ResolvedStoreOptions;
}
