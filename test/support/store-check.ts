/**
 * Oracles for reopened stores: the commit log must hold exactly a prefix of a workload plan,
 * whole units only, byte for byte, with consecutive queue offsets; ConsumeQueues and the index
 * must point at exactly those records. Mismatches throw at the first difference, naming it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { StoreEngine } from '../../lib/store/store-engine.js';
import type { StoredRecord } from '../../lib/store/record-decoder.js';
import { Plan, type PlanKind, type Unit, type WorkloadRecord } from './workload.mjs';

export interface LogContents {
  /** Whole units and records found. */
  readonly units: number;
  readonly seqs: number;
  /** Commit-log offsets of each queue's records in queue order, by `topic/queueId`. */
  readonly queues: Map<string, number[]>;
  /** End of the last record (the log's start when empty). */
  readonly lastEnd: number;
  /** Index keys to look up, with the record each must find. */
  readonly keyed: { topic: string; key: string; offset: number }[];
}

function fail(context: string, message: string): never {
  throw new Error(`${context}: ${message}`);
}

function expectedProperties(want: WorkloadRecord): Record<string, string> {
  const out: Record<string, string> = { TAGS: want.tags };
  if (want.keys !== undefined) out.KEYS = want.keys.join(' ');
  if (want.uniqKey !== undefined) out.UNIQ_KEY = want.uniqKey;
  return { ...out, ...want.properties };
}

/** Record `seq` of the plan as stored: every field the workload set, byte for byte. */
export function checkRecord(rec: StoredRecord, want: WorkloadRecord, seq: number,
  context: string): void {
  const at = `${context}: record seq ${seq} at ${rec.physicalOffset}`;
  if (!rec.body.equals(want.body)) {
    fail(at, `body differs: ${rec.body.toString('latin1', 0, 24)}...`);
  }
  if (rec.topic !== want.topic || rec.queueId !== want.queueId) {
    fail(at, `is in ${rec.topic}/${rec.queueId}, want ${want.topic}/${want.queueId}`);
  }
  const got = JSON.stringify(Object.entries(rec.properties).sort());
  const wanted = JSON.stringify(Object.entries(expectedProperties(want)).sort());
  if (got !== wanted) fail(at, `properties ${got}, want ${wanted}`);
  if (JSON.stringify(rec.keys) !== JSON.stringify(want.keys ?? [])) fail(at, 'keys differ');
  if (rec.tags !== want.tags || rec.uniqKey !== want.uniqKey) fail(at, 'tags or uniqKey differ');
  if (rec.sysFlag !== 0 || rec.reconsumeTimes !== 0) fail(at, `sysFlag ${rec.sysFlag}`);
}

/**
 * Walk the commit log from its start: record i must be record i of `kind`'s plan, each queue's
 * offsets must count up from 0, and the log must end on a unit boundary (a batch is all or
 * nothing) exactly where the store says its data ends.
 */
export function readLog(store: StoreEngine, kind: PlanKind, context: string): LogContents {
  const plan = new Plan(kind);
  const queues = new Map<string, number[]>();
  const keyed: LogContents['keyed'] = [];
  let unit: Unit | null = null;
  let inUnit = 0;
  let units = 0;
  let lastEnd = store.commitLogMinOffset;
  for (const rec of store.storage.commitLog.iterate(store.commitLogMinOffset)) {
    if (unit === null || inUnit === unit.records.length) {
      unit = plan.next();
      inUnit = 0;
    }
    const seq = unit.firstSeq + inUnit;
    const want = unit.records[inUnit]!;
    checkRecord(rec, want, seq, context);
    const name = `${rec.topic}/${rec.queueId}`;
    let offsets = queues.get(name);
    if (offsets === undefined) queues.set(name, (offsets = []));
    if (rec.queueOffset !== offsets.length) {
      fail(context, `seq ${seq} has queue offset ${rec.queueOffset}, want ${offsets.length}`);
    }
    if (rec.physicalOffset < lastEnd) fail(context, `seq ${seq} overlaps the record before`);
    offsets.push(rec.physicalOffset);
    if (seq % 3 === 0) keyed.push({ topic: rec.topic, key: `k${seq}`, offset: rec.physicalOffset });
    if (seq % 5 === 0) keyed.push({ topic: rec.topic, key: `u${seq}`, offset: rec.physicalOffset });
    lastEnd = rec.physicalOffset + rec.size;
    inUnit++;
    if (inUnit === unit.records.length) units++;
  }
  if (unit !== null && inUnit !== unit.records.length) {
    fail(context, `unit ${unit.index} (batch of ${unit.records.length}) is cut after ${inUnit}`);
  }
  checkEnd(store, lastEnd, context);
  return { units, seqs: unit === null ? 0 : unit.firstSeq + inUnit, queues, lastEnd, keyed };
}

/** Nothing follows the last record but, at most, the blank that sealed its segment. */
function checkEnd(store: StoreEngine, lastEnd: number, context: string): void {
  const max = store.commitLogMaxOffset;
  const segment = store.storage.commitLog.segmentSizeBytes;
  const sealed = max % segment === 0 && max > lastEnd && max - lastEnd < segment;
  if (max !== lastEnd && !sealed) {
    fail(context, `the log ends at ${max} but its last valid record ends at ${lastEnd}`);
  }
}

/** ConsumeQueues hold exactly the records found, and reads through them find those records. */
export function checkQueues(store: StoreEngine, log: LogContents, context: string): void {
  const table = store.storage.consumeQueues;
  for (const queue of table.all()) {
    const name = `${queue.topic}/${queue.queueId}`;
    const offsets = log.queues.get(name) ?? [];
    if (queue.minOffset !== 0 || queue.maxOffset !== offsets.length) {
      fail(context, `queue ${name} spans [${queue.minOffset}, ${queue.maxOffset}), ` +
        `the log holds ${offsets.length}`);
    }
    offsets.forEach((phy, i) => {
      const entry = queue.get(i);
      if (entry?.physicalOffset !== phy) {
        fail(context, `queue ${name} entry ${i} points at ${entry?.physicalOffset}, not ${phy}`);
      }
    });
  }
  for (const [name, offsets] of log.queues) {
    const [topic, q] = name.split('/') as [string, string];
    const queueId = Number(q);
    if (table.get(topic, queueId) === undefined) fail(context, `queue ${name} is missing`);
    for (const from of [0, Math.max(0, offsets.length - 8)]) {
      const r = store.getMessage(topic, queueId, from, 8);
      const got = r.records.map((rec) => rec.physicalOffset);
      const want = offsets.slice(from, from + 8);
      if (r.status !== 'FOUND' || JSON.stringify(got) !== JSON.stringify(want)) {
        fail(context, `getMessage(${name}, ${from}) gave ${r.status} ${JSON.stringify(got)}`);
      }
    }
  }
}

/** The index finds a sample of the keyed records (all of the last 40), and nothing past the end. */
export function checkIndex(store: StoreEngine, log: LogContents, context: string): void {
  const end = store.storage.index.endPhyOffset;
  if (end >= log.lastEnd && !(end === -1 && log.lastEnd === 0)) {
    fail(context, `the index points at ${end}, at or past the log's end ${log.lastEnd}`);
  }
  const sample = log.keyed.filter((_, i) => i % 11 === 0 || i >= log.keyed.length - 40);
  for (const { topic, key, offset } of sample) {
    const found = store.queryMessage(topic, key, 4).map((r) => r.physicalOffset);
    if (found.length !== 1 || found[0] !== offset) {
      fail(context, `queryMessage(${topic}, ${key}) gave ${JSON.stringify(found)}, not ${offset}`);
    }
  }
}

/** Every file under `dir` (but the lock), by relative path. */
export function snapshot(dir: string, skip: (relative: string) => boolean = () => false):
Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (at: string): void => {
    for (const entry of fs.readdirSync(at, { withFileTypes: true }).sort(byName)) {
      const full = path.join(at, entry.name);
      const relative = path.relative(dir, full);
      if (entry.isDirectory()) walk(full);
      else if (relative !== 'lock' && !skip(relative)) out.set(relative, fs.readFileSync(full));
    }
  };
  walk(dir);
  return out;
}

function byName(a: fs.Dirent, b: fs.Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Names of the files that differ between two snapshots (missing on either side included). With
 * `zeroFilled`, a file only grown with zeros counts as unchanged: a short segment's missing
 * part is empty, and opening one allocates it.
 */
export function differences(a: Map<string, Buffer>, b: Map<string, Buffer>,
  zeroFilled = false): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].sort().filter((name) => {
    const x = a.get(name);
    const y = b.get(name);
    if (x === undefined || y === undefined) return true;
    if (!zeroFilled || x.length >= y.length) return !x.equals(y);
    return !x.equals(y.subarray(0, x.length)) || !y.subarray(x.length).every((v) => v === 0);
  });
}

/** Path of the commit-log segment that holds `offset`. */
export function segmentOf(dir: string, offset: number, segmentBytes: number): string {
  const from = offset - (offset % segmentBytes);
  return path.join(dir, 'commitlog', String(from).padStart(20, '0'));
}

/** Flip every bit of `length` bytes at `position` of a file, in place. */
export function garble(file: string, position: number, length: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const bytes = Buffer.alloc(length);
    fs.readSync(fd, bytes, 0, length, position);
    for (let i = 0; i < length; i++) bytes[i] = bytes[i]! ^ 0xff;
    fs.writeSync(fd, bytes, 0, length, position);
  } finally {
    fs.closeSync(fd);
  }
}
