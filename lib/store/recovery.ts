/**
 * Recovery, on every open, clean shutdown or not:
 *
 * 1. Verify the commit log, changing nothing, from the last safe point the checkpoint names
 *    (the start of the last record it knew flushed, or where ConsumeQueue and index were last
 *    durable, whichever is earlier) to the end: frame, offset and checksum of every record.
 *    When no valid record is found there (the checkpoint's last record is damaged or gone), the
 *    check starts again from the start of that point's segment. What the checkpoint covers is
 *    checked when it is read, so an open after a clean shutdown or in steady state checks a
 *    few records, whatever the size of the log.
 * 2. The first bad frame ends the log (a torn tail), unless it lies before the flushed offset the
 *    checkpoint recorded AND a valid record follows it: that is corruption in the middle, reported
 *    as CORRUPT_DATA, never skipped; the failed open has then changed no file (ConsumeQueues and
 *    index are loaded only after the check). A garbled last record is a tail and is truncated.
 *    Records of one multi-record append carry SYSFLAG_BATCH_MORE but the last: a log that ends
 *    inside such a run ends before it, so a batch cut by a crash is dropped whole.
 * 3. ConsumeQueues and the index drop every entry at or beyond the safe point, then every record
 *    from there is dispatched again, so they end exactly as a clean run would have left them.
 *    After an unclean end (a crash, or an open that failed past step 2: it leaves `abort`), what
 *    they read back may be in the page cache only, zeros a failed open wrote over dropped
 *    entries included: the file holding each queue's end and the index file the truncation
 *    reaches are synced by the open's flush, before its checkpoint, even when nothing here
 *    changes them.
 * 4. The bytes past the end are zeros after a clean shutdown whose log ended where its records
 *    do; otherwise they may hold what the crash left, and appends wait until they are emptied
 *    (in the background, see MappedFile.distrustTail).
 *
 * Long scans yield to the event loop every `limits.recoveryYieldBytes` and report progress.
 */
import { channel } from 'node:diagnostics_channel';
import { channels, type RecoverMessage } from '../channels.js';
import { setImmediate as yieldTurn } from 'node:timers/promises';
import { CorruptDataError } from '../errors.js';
import { limits } from '../limits.js';
import type { CommitLog, DispatchRequest } from './commit-log.js';
import {
  PROPERTY_KEYS, PROPERTY_TAGS, PROPERTY_UNIQ_KEY, readU64, RECORD_MAGIC, SYSFLAG_BATCH_MORE,
  recordTagsCode,
} from './record-codec.js';
import {
  decodeProperties, FRAME_BAD, FRAME_BLANK, FRAME_EMPTY, frameKind, lastFrameReason, readHead,
  type RecordHead,
} from './record-decoder.js';
import type { RecoveryProgress } from './options.js';

const recoverChannel = channel(channels.recover);
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
  /** The last run closed cleanly (its bytes past the data are zeros). */
  readonly cleanShutdown: boolean;
  /** Open ConsumeQueues and index: called once the commit log passed its check. */
  readonly loadLogics: () => Promise<void>;
  /** Drop ConsumeQueue and index entries at or beyond a commit-log offset. */
  readonly truncateLogics: (physicalOffset: number) => void;
  readonly dispatch: (request: DispatchRequest) => void;
  readonly onProgress: ((progress: RecoveryProgress) => void) | null;
}

/** What recovery found at open; also what `pocketmq:recover` publishes. */
export type RecoveryReport = RecoverMessage;

/** Where the verified log ends and what its last record was. */
interface Verified {
  end: number;
  lastRecordStart: number;
  lastStoreTimestamp: number;
  records: number;
  reason: string;
}

export async function recoverCommitLog(input: RecoveryInput): Promise<RecoveryReport> {
  const log = input.commitLog;
  const files = log.queue.files;
  const first = files[0];
  if (first === undefined) {
    await input.loadLogics();
    input.truncateLogics(0);
    return report(0, 0, 0, 0, 0, false, 'empty');
  }
  const min = first.fileFromOffset;
  const lastFile = files.at(-1)!;
  const dataEnd = lastFile.fileFromOffset + lastFile.sizeBytes;
  const redispatchFrom = clamp(input.dispatchedOffset, min, dataEnd);
  const tail = input.tailRecordOffset >= min ? input.tailRecordOffset : redispatchFrom;
  // Verify from the earliest of: what the logics lack, the last record known flushed, and the
  // flushed offset (a crash may have lost anything after it).
  const safe = Math.min(redispatchFrom, tail, clamp(input.flushedOffset, min, dataEnd));
  const segmentStart = safe - ((safe - min) % log.segmentSizeBytes);
  let start = safe;
  let v = await verify(log, start, input);
  if (v.records === 0 && start > segmentStart && start < dataEnd) {
    start = segmentStart;
    v = await verify(log, start, input);
  }
  await input.loadLogics();
  input.truncateLogics(Math.min(redispatchFrom, v.end));
  const redispatched = await redispatch(log, redispatchFrom, v.end, input.dispatch);
  const torn = v.reason !== 'zeros' && v.reason !== 'end';
  log.setRecovered(v.end, v.lastRecordStart, v.lastStoreTimestamp,
    Math.min(input.flushedOffset, v.end), input.tailRecordOffset,
    input.cleanShutdown && !torn ? 'keep' : 'distrust');
  const r = report(start, v.end, v.end - start, v.records, redispatched, torn, v.reason);
  if (recoverChannel.hasSubscribers) recoverChannel.publish(r);
  return r;
}

/**
 * Pass 1, read only: check every frame from `start` and find where the log ends; throws
 * CORRUPT_DATA for a bad frame before the flushed offset with a valid record after it.
 */
async function verify(log: CommitLog, start: number, input: RecoveryInput): Promise<Verified> {
  const lastFile = log.queue.files.at(-1)!;
  const total = Math.max(0, lastFile.fileFromOffset + lastFile.sizeBytes - start);
  // Until a record is seen, the segment start stands for the last record: a place to scan from.
  const v: Verified = { end: start, lastRecordStart: input.tailRecordOffset < 0 ? -1 : start,
    lastStoreTimestamp: 0, records: 0, reason: 'end' };
  /** The state before an unfinished multi-record append, to fall back to if the log ends in it. */
  let batch: Verified | null = null;
  let at = start;
  let sinceYield = 0;
  for (let file = log.queue.findByOffset(at); file !== undefined;
    file = log.queue.findByOffset(at)) {
    const { buf, dv } = file.scanBuffer();
    const base = file.fileFromOffset;
    let stop: string | null = null;
    for (;;) {
      const kind = frameKind(buf, dv, at - base, file.sizeBytes, at);
      if (kind === FRAME_BLANK && batch === null) break;
      if (kind <= FRAME_EMPTY) {
        stop = kind === FRAME_EMPTY ? 'zeros' : kind === FRAME_BAD ? lastFrameReason()
          : 'a batch cut by a segment end';
        break;
      }
      const more = dv.getUint32(at - base + 12, true) >= SYSFLAG_BATCH_MORE;
      if (more && batch === null) batch = { ...v };
      if (!more) batch = null;
      v.lastRecordStart = at;
      v.lastStoreTimestamp = readU64(dv, at - base + 48);
      v.records++;
      at += kind;
      v.end = at;
      sinceYield += kind;
    }
    if (stop !== null) {
      checkNothingFollows(log, at, stop, input.flushedOffset);
      v.reason = stop;
      break;
    }
    at = base + file.sizeBytes;
    v.end = at;
    input.onProgress?.({ checkedBytes: at - start, totalBytes: total });
    if (sinceYield >= limits.recoveryYieldBytes) {
      sinceYield = 0;
      await yieldTurn();
    }
  }
  if (batch !== null) return { ...batch, reason: `${v.reason}, inside a batch` };
  return v;
}

/**
 * Pass 2: dispatch every record in [from, end) again, in log order. Pass 1 checked each of their
 * frames (it starts at or before `from`): here only the size is read, and a blank marker (or
 * anything but a record) ends the segment.
 */
async function redispatch(log: CommitLog, from: number, end: number,
  dispatch: (request: DispatchRequest) => void): Promise<number> {
  let count = 0;
  let sinceYield = 0;
  let at = from;
  const request = emptyRequest();
  while (at < end) {
    const file = log.queue.findByOffset(at)!;
    const { buf, dv } = file.scanBuffer();
    const base = file.fileFromOffset;
    const fileEnd = Math.min(end, base + file.sizeBytes);
    while (at < fileEnd) {
      if (dv.getUint32(at - base + 8, true) !== RECORD_MAGIC) break; // the segment's blank
      const kind = dv.getUint32(at - base + 4, true);
      dispatch(fillRequest(request, buf, readHead(buf, dv, at - base), at, kind));
      count++;
      at += kind;
      sinceYield += kind;
    }
    at = Math.max(at, base + file.sizeBytes);
    if (sinceYield >= limits.recoveryYieldBytes) {
      sinceYield = 0;
      await yieldTurn();
    }
  }
  return count;
}

type MutableRequest = { -readonly [K in keyof DispatchRequest]: DispatchRequest[K] };

function emptyRequest(): MutableRequest {
  return { topic: '', queueId: 0, queueOffset: 0, physicalOffset: 0, size: 0, tagsCode: 0,
    storeTimestamp: 0, keys: undefined, uniqKey: undefined };
}

/** What a record at `physicalOffset` dispatches to its ConsumeQueue and the index. */
export function dispatchOf(buf: Buffer, head: RecordHead, physicalOffset: number,
  size: number): DispatchRequest {
  return fillRequest(emptyRequest(), buf, head, physicalOffset, size);
}

/** `dispatchOf` into a request object reused record after record (the dispatcher copies). */
function fillRequest(request: MutableRequest, buf: Buffer, head: RecordHead,
  physicalOffset: number, size: number): DispatchRequest {
  const props = head.propertiesLength === 0 ? null
    : decodeProperties(buf, head.propertiesAt, head.propertiesAt + head.propertiesLength);
  const keys = props?.[PROPERTY_KEYS];
  request.topic = head.topic;
  request.queueId = head.queueId;
  request.queueOffset = head.queueOffset;
  request.physicalOffset = physicalOffset;
  request.size = size;
  request.tagsCode = recordTagsCode(props?.[PROPERTY_TAGS], props);
  request.storeTimestamp = head.storeTimestamp;
  request.keys = keys === undefined || keys === '' ? undefined : keys.split(' ');
  request.uniqKey = props?.[PROPERTY_UNIQ_KEY];
  return request;
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
      if (frameKind(buf, dv, candidate, file.sizeBytes, base + candidate) > 0) {
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
