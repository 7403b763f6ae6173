/**
 * What the recovery tests share: a store with small files and idle timers, the workload written
 * into it with every result kept, and the ways a test damages or crashes it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { ManualClock } from '../../lib/store/clock.js';
import type { IoBackend } from '../../lib/store/io/backend.js';
import { StoreEngine, type PutResult } from '../../lib/store/store-engine.js';
import type { StoreOptions } from '../../lib/store/options.js';
import { Plan, type PlanKind, type Unit } from './workload.mjs';

export const SEGMENT_BYTES = 64 * 1024;

/** Temporary directories, each removed after its test. Call once at module level. */
export function useTempDirs(): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-'));
    made.push(dir);
    return dir;
  };
}

/**
 * Small segments, ConsumeQueue and index files; a ManualClock nobody advances, so no flush,
 * checkpoint or retention timer ever fires on its own: the test decides what is durable.
 */
export function options(backend: 'mmap' | 'file' | IoBackend, extra: StoreOptions = {}):
StoreOptions {
  return {
    backend, clock: new ManualClock(), commitLogSegmentSize: SEGMENT_BYTES,
    consumeQueueEntriesPerFile: 64, indexHashSlots: 128, indexMaxEntries: 512,
    diskMaxUsedSpaceRatio: 1, diskFullRatio: 1, ...extra,
  };
}

export interface Written {
  /** Every unit appended, in order, with its results. */
  readonly units: { unit: Unit; results: PutResult[] }[];
  readonly plan: Plan;
}

/** Append `count` units of `kind`'s plan (continuing `from`), one unit per turn. */
export async function write(store: StoreEngine, count: number, kind: PlanKind = 'single',
  from?: Written): Promise<Written> {
  const plan = from?.plan ?? new Plan(kind);
  const units = from?.units ?? [];
  for (let i = 0; i < count; i++) {
    const unit = plan.next();
    const results = unit.batch ? await store.putMessages(unit.records)
      : [await store.putMessage(unit.records[0]!)];
    units.push({ unit, results });
  }
  return { units, plan };
}

/** The last record written: its input, result and sequence number. */
export function lastRecord(w: Written): { seq: number; result: PutResult;
  topic: string; queueId: number; keys: string[] } {
  const { unit, results } = w.units.at(-1)!;
  const i = results.length - 1;
  const record = unit.records[i]!;
  return { seq: unit.firstSeq + i, result: results[i]!, topic: record.topic,
    queueId: record.queueId, keys: record.keys ?? [] };
}

/** What kill -9 at this moment would leave: a copy of the directory, taken while it is open. */
export function copyOpenStore(dir: string, to: string): void {
  fs.cpSync(dir, to, { recursive: true, filter: (src) => path.basename(src) !== 'lock' });
}

/** Cut a file to `length` bytes. */
export function truncate(file: string, length: number): void {
  fs.truncateSync(file, length);
}

/** The rejection of a promise expected to fail. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

export { StoreEngine };
