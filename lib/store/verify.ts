/**
 * verifyStore: check a store without changing it (through a read-only open, so it runs while
 * another process owns the store).
 *
 * 1. The open itself: recovery checks the log's newest segments and refuses corruption before
 *    the flushed offset (CORRUPT_DATA: reported as a problem, nothing more can be checked).
 * 2. Every record of the commit log, from its first to its last segment: frame, offset and
 *    checksum. A bad frame is reported and the walk goes on at the next segment; zeros before
 *    the log's end (a hole) are reported too.
 * 3. Every record against its ConsumeQueue: the entry at its queue offset must point at it with
 *    its size and tag code; and each queue must hold no entry past the last record seen.
 * 4. Every index entry must point at a record whose topic#key (or unique key) has the entry's
 *    hash, and the number of entries must be the number of keys the records carry.
 *
 * ConsumeQueue entries and index entries that the open rebuilt from the log (after a crash, or
 * written by an owner since its last checkpoint) are checked as rebuilt: `rebuiltRecords` says
 * how many. Long walks yield to the event loop and report progress.
 */
import { setImmediate as yieldTurn } from 'node:timers/promises';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { CommitLog, DispatchRequest } from './commit-log.js';
import type { ConsumeQueueTable } from './consume-queue-table.js';
import { indexKeyHash } from './index-header.js';
import type { IndexService } from './index-service.js';
import type { RecoveryProgress } from './options.js';
import type { ReadOnlyStoreOptions } from './read-only.js';
import { checkFrame, FRAME_BLANK, FRAME_EMPTY, readHead } from './record-decoder.js';
import { dispatchOf } from './recovery.js';
import { StoreEngine } from './store-engine.js';

export interface VerifyProblem {
  /** 'corrupt-record' | 'hole' | 'consume-queue' | 'index' | 'open' */
  readonly kind: string;
  readonly message: string;
  readonly offset?: number;
  readonly topic?: string;
  readonly queueId?: number;
}

export interface VerifyReport {
  readonly healthy: boolean;
  readonly records: number;
  readonly checkedBytes: number;
  readonly commitLog: { readonly minOffset: number; readonly maxOffset: number };
  readonly queues: number;
  readonly indexEntries: number;
  /** Records whose ConsumeQueue and index entries the open rebuilt instead of reading. */
  readonly rebuiltRecords: number;
  /** Bytes past the last valid record that the open left out (a torn or unfinished tail). */
  readonly tornTail: boolean;
  /** At most `limits.verifyMaxProblems`; `problemCount` counts them all. */
  readonly problems: VerifyProblem[];
  readonly problemCount: number;
}

export interface VerifyOptions extends ReadOnlyStoreOptions {
  readonly onProgress?: ((progress: RecoveryProgress) => void) | undefined;
}

class Findings {
  readonly problems: VerifyProblem[] = [];
  count = 0;
  add(problem: VerifyProblem): void {
    this.count++;
    if (this.problems.length < limits.verifyMaxProblems) this.problems.push(problem);
  }
}

export async function verifyStore(dir: string, options: VerifyOptions = {}):
  Promise<VerifyReport> {
  const { onProgress, ...openOptions } = options;
  const findings = new Findings();
  let engine: StoreEngine;
  try {
    engine = await StoreEngine.openReadOnly(dir, openOptions);
  } catch (err) {
    if (!(err instanceof PocketMQError) || err.code !== 'CORRUPT_DATA') throw err;
    findings.add({ kind: 'open', message: err.message, offset: err.offset });
    return { healthy: false, records: 0, checkedBytes: 0, commitLog: { minOffset: 0,
      maxOffset: 0 }, queues: 0, indexEntries: 0, rebuiltRecords: 0, tornTail: false,
    problems: findings.problems, problemCount: findings.count };
  }
  try {
    const { commitLog, consumeQueues, index } = engine.storage;
    const walk = await walkLog(commitLog, consumeQueues, findings, onProgress ?? null);
    checkQueueEnds(consumeQueues, walk.lastQueueOffset, findings);
    const indexEntries = await checkIndex(index, commitLog, walk, findings);
    return {
      healthy: findings.count === 0, records: walk.records, checkedBytes: walk.checkedBytes,
      commitLog: { minOffset: commitLog.minOffset, maxOffset: commitLog.maxOffset },
      queues: consumeQueues.all().length, indexEntries,
      rebuiltRecords: engine.recovery?.redispatched ?? 0,
      tornTail: engine.recovery?.tornTail ?? false,
      problems: findings.problems, problemCount: findings.count,
    };
  } finally {
    await engine.close();
  }
}

interface Walk {
  records: number;
  checkedBytes: number;
  /** Next queue offset after the last record seen, per "topic\0queueId". */
  lastQueueOffset: Map<string, number>;
  /** Index keys the records carry, counted from each index file's first offset. */
  keysFrom: (phyOffset: number) => number;
  /** Parts of the log a bad frame kept from being checked, [from, to). */
  unchecked: { from: number; to: number }[];
}

async function walkLog(log: CommitLog, queues: ConsumeQueueTable, findings: Findings,
  onProgress: ((p: RecoveryProgress) => void) | null): Promise<Walk> {
  const lastQueueOffset = new Map<string, number>();
  const unchecked: { from: number; to: number }[] = [];
  const keyCounts: { phy: number; keys: number }[] = [];
  let records = 0;
  let checkedBytes = 0;
  let sinceYield = 0;
  const total = log.maxOffset - log.minOffset;
  for (const file of log.queue.files) {
    const base = file.fileFromOffset;
    if (base + file.sizeBytes <= log.minOffset) continue;
    const { buf, dv } = file.scanBuffer();
    let at = Math.max(log.minOffset, base);
    const end = Math.min(log.maxOffset, base + file.sizeBytes);
    while (at < end) {
      const check = checkFrame(buf, dv, at - base, file.sizeBytes, at);
      if (check.kind === FRAME_BLANK) break;
      if (check.kind <= FRAME_EMPTY) {
        const kind = check.kind === FRAME_EMPTY ? 'hole' : 'corrupt-record';
        findings.add({ kind, offset: at, message: `commit log at ${at}: ${check.reason}; ` +
          `the rest of segment ${base} is not checked` });
        unchecked.push({ from: at, to: end });
        break;
      }
      const request = dispatchOf(buf, readHead(buf, dv, at - base), at, check.kind);
      checkEntry(queues, request, findings);
      lastQueueOffset.set(`${request.topic}\u0000${request.queueId}`, request.queueOffset + 1);
      const keys = keyCount(request);
      if (keys > 0) keyCounts.push({ phy: at, keys });
      records++;
      at += check.kind;
    }
    checkedBytes += Math.max(0, end - Math.max(log.minOffset, base));
    sinceYield += file.sizeBytes;
    onProgress?.({ checkedBytes, totalBytes: total });
    if (sinceYield >= limits.recoveryYieldBytes) {
      sinceYield = 0;
      await yieldTurn();
    }
  }
  const keysFrom = (phy: number): number =>
    keyCounts.reduce((n, k) => (k.phy >= phy ? n + k.keys : n), 0);
  return { records, checkedBytes, lastQueueOffset, keysFrom, unchecked };
}

/** Index entries a record makes: its unique key, and each distinct other key (IndexService). */
function keyCount(r: DispatchRequest): number {
  const keys = r.keys ?? [];
  const uniq = r.uniqKey !== undefined && r.uniqKey !== '' ? 1 : 0;
  return uniq + keys.filter((k, i) => k !== '' && k !== r.uniqKey && keys.indexOf(k) === i)
    .length;
}

function checkEntry(queues: ConsumeQueueTable, r: DispatchRequest, findings: Findings): void {
  const queue = queues.get(r.topic, r.queueId);
  const where = { topic: r.topic, queueId: r.queueId, offset: r.physicalOffset };
  if (queue === undefined) {
    findings.add({ kind: 'consume-queue', ...where,
      message: `no consume queue ${r.topic}/${r.queueId} for the record at ${r.physicalOffset}` });
    return;
  }
  if (r.queueOffset < queue.minOffset) return; // its entry went with retention
  const e = queue.get(r.queueOffset);
  if (e === null || e.physicalOffset !== r.physicalOffset || e.size !== r.size ||
    e.tagsCode !== r.tagsCode) {
    const found = e === null ? 'no entry'
      : `offset ${e.physicalOffset}, size ${e.size}, tag code ${e.tagsCode}`;
    findings.add({ kind: 'consume-queue', ...where, message: `${r.topic}/${r.queueId} entry ` +
      `${r.queueOffset} should point at ${r.physicalOffset} (size ${r.size}, tag code ` +
      `${r.tagsCode}): ${found}` });
  }
}

function checkQueueEnds(queues: ConsumeQueueTable, last: Map<string, number>,
  findings: Findings): void {
  for (const queue of queues.all()) {
    const expected = last.get(`${queue.topic}\u0000${queue.queueId}`) ?? queue.minOffset;
    if (queue.maxOffset > expected) {
      findings.add({ kind: 'consume-queue', topic: queue.topic, queueId: queue.queueId,
        message: `${queue.topic}/${queue.queueId} has ${queue.maxOffset - expected} entries ` +
          `past its last record (queue offset ${expected})` });
    }
  }
}

async function checkIndex(index: IndexService, log: CommitLog, walk: Walk,
  findings: Findings): Promise<number> {
  // Entries into a part of the log a bad frame hid are not problems of the index.
  const hidden = (phy: number): boolean => walk.unchecked.some((u) => phy >= u.from && phy < u.to);
  let entries = 0;
  let firstPhy = -1;
  for (const file of index.indexFiles) {
    if (firstPhy < 0 && !file.isEmpty()) firstPhy = file.beginPhyOffset;
    for (const { hash, phyOffset } of file.entries()) {
      entries++;
      // The record went with retention, or lies where the walk could not look.
      if (phyOffset < log.minOffset || hidden(phyOffset)) continue;
      const record = log.read(phyOffset);
      const hashes = record === null ? [] : [record.uniqKey ?? '', ...record.keys]
        .filter((k) => k !== '').map((k) => indexKeyHash(`${record.topic}#${k}`));
      if (!hashes.includes(hash)) {
        findings.add({ kind: 'index', offset: phyOffset, message: `index ${file.path} entry ` +
          `for ${phyOffset}: ${record === null ? 'no record there' : 'no key of the record ' +
          'has its hash'}` });
      }
      if (entries % 65_536 === 0) await yieldTurn();
    }
  }
  // Entries are counted from the first indexed record on (retention may have taken older
  // index files); an index file that went with retention leaves nothing to compare.
  const from = firstPhy < 0 ? log.minOffset : firstPhy;
  const expected = walk.keysFrom(from);
  if (expected !== entries && from >= log.minOffset && walk.unchecked.length === 0) {
    findings.add({ kind: 'index', message: `the index holds ${entries} entries; the records ` +
      `from offset ${from} carry ${expected} keys` });
  }
  return entries;
}
