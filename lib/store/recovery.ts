/**
 * Recovery, on every open, clean shutdown or not (SPEC §6):
 *
 * 1. Verify the commit log from the last safe point the checkpoint names (the start of the last
 *    record it knew flushed, or where ConsumeQueue and index were last durable, whichever is
 *    earlier) to the end: frame, offset and checksum of every record.
 * 2. The first bad frame ends the log (a torn tail), unless it lies before the flushed offset the
 *    checkpoint recorded AND a valid record follows it: that is corruption in the middle, reported
 *    as CORRUPT_DATA, never skipped. A garbled last record is a tail and is truncated.
 * 3. ConsumeQueues and the index drop every entry at or beyond the safe point, then every record
 *    from there is dispatched again, so they end exactly as a clean run would have left them.
 *
 * Long scans yield to the event loop every `limits.recoveryYieldBytes` and report progress.
 */
import { channel } from 'node:diagnostics_channel';
import { setImmediate as yieldTurn } from 'node:timers/promises';
import { CorruptDataError } from '../errors.js';
import { limits } from '../limits.js';
import type { CommitLog, DispatchRequest } from './commit-log.js';
import type { MappedFile } from './mapped-file.js';
import {
  PROPERTY_KEYS, PROPERTY_TAGS, PROPERTY_UNIQ_KEY, RECORD_MAGIC, tagsCodeOf,
} from './record-codec.js';
import {
  checkFrame, decodeProperties, FRAME_BAD, FRAME_BLANK, FRAME_EMPTY, readHead, type RecordHead,
} from './record-decoder.js';
import type { RecoveryProgress } from './options.js';

const recoverChannel = channel('pocketmq:recover');
const magicBytes = Buffer.alloc(4);
magicBytes.writeUInt32LE(RECORD_MAGIC, 0);

export interface RecoveryInput {
  readonly commitLog: CommitLog;
  /** Commit-log bytes before this were durable at the last checkpoint. */
  readonly flushedOffset: number;
  /** ConsumeQueue and index were durable up to here: re-dispatch from it. */
  readonly dispatchedOffset: number;
  /** Start of the last record the checkpoint knew flushed (-1: none). */
  readonly tailRecordOffset: number;
  /** Drop ConsumeQueue and index entries at or beyond a commit-log offset. */
  readonly truncateLogics: (physicalOffset: number) => void;
  readonly dispatch: (request: DispatchRequest) => void;
  readonly onProgress: ((progress: RecoveryProgress) => void) | null;
}

export interface RecoveryReport {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly checkedBytes: number;
  readonly records: number;
  readonly redispatched: number;
  /** True when a torn or garbled tail was cut off at `endOffset`. */
  readonly tornTail: boolean;
  readonly reason: string;
}

interface ScanState {
  at: number;
  lastRecordStart: number;
  lastStoreTimestamp: number;
  records: number;
  redispatched: number;
  sinceYield: number;
}

export async function recoverCommitLog(input: RecoveryInput): Promise<RecoveryReport> {
  const log = input.commitLog;
  const files = log.queue.files;
  const first = files[0];
  if (first === undefined) {
    input.truncateLogics(0);
    return report(0, 0, 0, 0, 0, false, 'empty');
  }
  const min = first.fileFromOffset;
  const lastFile = files.at(-1)!;
  const dataEnd = lastFile.fileFromOffset + lastFile.sizeBytes;
  const redispatchFrom = clamp(input.dispatchedOffset, min, dataEnd);
  const tail = input.tailRecordOffset >= min ? input.tailRecordOffset : redispatchFrom;
  const start = Math.min(redispatchFrom, tail);
  input.truncateLogics(redispatchFrom);
  const state: ScanState = {
    at: start, lastRecordStart: input.tailRecordOffset, lastStoreTimestamp: 0, records: 0,
    redispatched: 0, sinceYield: 0,
  };
  const total = Math.max(0, dataEnd - start);
  let reason = 'end';
  for (;;) {
    const file = log.queue.findByOffset(state.at);
    if (file === undefined) break;
    const stop = scanFile(file, state, redispatchFrom, input);
    if (stop !== null) {
      checkNothingFollows(log, state.at, stop, input.flushedOffset);
      reason = stop;
      break;
    }
    state.at = file.fileFromOffset + file.sizeBytes;
    input.onProgress?.({ checkedBytes: state.at - start, totalBytes: total });
    if (state.sinceYield >= limits.recoveryYieldBytes) {
      state.sinceYield = 0;
      await yieldTurn();
    }
  }
  const end = state.at;
  log.setRecovered(end, state.lastRecordStart, state.lastStoreTimestamp);
  if (end < redispatchFrom) input.truncateLogics(end);
  const torn = reason !== 'zeros' && reason !== 'end';
  const r = report(start, end, end - start, state.records, state.redispatched, torn, reason);
  if (recoverChannel.hasSubscribers) recoverChannel.publish(r);
  return r;
}

/** Scan one segment from `state.at`; returns null to go on to the next segment, or why it ended. */
function scanFile(file: MappedFile, state: ScanState, redispatchFrom: number,
  input: RecoveryInput): string | null {
  const { buf, dv } = file.scanBuffer();
  const base = file.fileFromOffset;
  for (;;) {
    const check = checkFrame(buf, dv, state.at - base, file.sizeBytes, state.at);
    if (check.kind === FRAME_BLANK) return null;
    if (check.kind === FRAME_EMPTY) return 'zeros';
    if (check.kind === FRAME_BAD) return check.reason;
    const size = check.kind;
    const head = readHead(buf, dv, state.at - base);
    if (state.at >= redispatchFrom) {
      input.dispatch(dispatchOf(buf, head, state.at, size));
      state.redispatched++;
    }
    state.lastRecordStart = state.at;
    state.lastStoreTimestamp = head.storeTimestamp;
    state.records++;
    state.at += size;
    state.sinceYield += size;
  }
}

function dispatchOf(buf: Buffer, head: RecordHead, physicalOffset: number,
  size: number): DispatchRequest {
  const props = head.propertiesLength === 0 ? null
    : decodeProperties(buf, head.propertiesAt, head.propertiesAt + head.propertiesLength);
  const keys = props?.[PROPERTY_KEYS];
  return {
    topic: head.topic, queueId: head.queueId, queueOffset: head.queueOffset, physicalOffset, size,
    tagsCode: tagsCodeOf(props?.[PROPERTY_TAGS]), storeTimestamp: head.storeTimestamp,
    keys: keys === undefined || keys === '' ? undefined : keys.split(' '),
    uniqKey: props?.[PROPERTY_UNIQ_KEY],
  };
}

/**
 * A bad frame at `at` before the flushed offset is corruption if any valid record follows it
 * anywhere in the log; otherwise it is a garbled or torn last record.
 */
function checkNothingFollows(log: CommitLog, at: number, reason: string, flushed: number): void {
  if (at >= flushed) return;
  const found = findValidRecordAfter(log, at);
  if (found >= 0) {
    throw new CorruptDataError(
      `commit log is corrupt at offset ${at} (${reason}); a valid record follows at ${found}`,
      { offset: at, actual: found });
  }
}

function findValidRecordAfter(log: CommitLog, at: number): number {
  for (const file of log.queue.files) {
    const base = file.fileFromOffset;
    if (base + file.sizeBytes <= at) continue;
    const { buf, dv } = file.scanBuffer();
    let p = Math.max(0, at - base + 1);
    for (;;) {
      const hit = buf.indexOf(magicBytes, p + 8);
      if (hit < 0) break;
      const candidate = hit - 8;
      if (checkFrame(buf, dv, candidate, file.sizeBytes, base + candidate).kind > 0) {
        return base + candidate;
      }
      p = candidate + 1;
    }
  }
  return -1;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

function report(startOffset: number, endOffset: number, checkedBytes: number, records: number,
  redispatched: number, tornTail: boolean, reason: string): RecoveryReport {
  return { startOffset, endOffset, checkedBytes, records, redispatched, tornTail, reason };
}
