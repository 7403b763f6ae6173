/**
 * kill -9 of a real writer process (test/fixtures/crash-writer.mjs) at a random moment, then
 * recovery in this process. SPEC §5: with SYNC_FLUSH every acknowledged record survives; with
 * ASYNC_FLUSH what survives is a prefix of what was appended; a batch is all or nothing; nothing
 * corrupt ever comes back. The kill delays are seeded: a failure prints the seed that replays
 * them (PMQ_CRASH_SEED=<seed> npx vitest run test/crash.test.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreEngine } from '../lib/store/store-engine.js';
import type { FlushDiskType, StoreOptions } from '../lib/store/options.js';
import { ensureBuilt } from './support/dist.js';
import {
  checkIndex, checkQueues, differences, readLog, snapshot, type LogContents,
} from './support/store-check.js';
import { drive, Plan, SteppedClock, type PlanKind } from './support/workload.mjs';
import { Writer, type WriterConfig } from './support/writer.js';
import { mulberry32 } from './support/sim-backend.js';

type Backend = 'mmap' | 'file';

const SEED = Number(process.env.PMQ_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** The kill lands uniformly in [0, MAX_KILL_DELAY_MS) after the first acknowledgement. */
const MAX_KILL_DELAY_MS = 400;
/** ... or in [0, GROWING_KILL_DELAY_MS) after the first segment passed 1 MiB. */
const GROWING_KILL_DELAY_MS = 30;
const random = mulberry32(SEED);
console.log(`crash.test: seed ${SEED} (replay with PMQ_CRASH_SEED=${SEED})`);


/** Small files everywhere, so a run rolls commit-log segments, ConsumeQueue and index files. */
function storeOptions(flushDiskType: FlushDiskType, backend: Backend) {
  return {
    flushDiskType, backend,
    commitLogSegmentSize: 256 * 1024,
    consumeQueueEntriesPerFile: 512,
    indexHashSlots: 1024,
    indexMaxEntries: 4096,
    syncFlushTimeoutMs: 60_000,
    diskMaxUsedSpaceRatio: 1,
    diskFullRatio: 1,
  } satisfies StoreOptions;
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-'));
  dirs.push(dir);
  return dir;
}

const writers: Writer[] = [];
function startWriter(config: WriterConfig): Writer {
  const writer = new Writer(config);
  writers.push(writer);
  return writer;
}

beforeAll(() => ensureBuilt());
afterEach(async () => {
  // A failed test must not leave a writer running (or holding its directory).
  for (const writer of writers.splice(0)) await writer.kill().catch(() => undefined);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** After recovery every queue continues at the next offset. */
async function appendContinues(store: StoreEngine, log: LogContents, context: string):
Promise<void> {
  for (const [name, offsets] of [...log.queues].slice(0, 3)) {
    const [topic, q] = name.split('/') as [string, string];
    const r = await store.putMessage({ topic, queueId: Number(q), body: Buffer.from('after') });
    expect(r.queueOffset, `${context}: next offset of ${name}`).toBe(offsets.length);
    expect(r.physicalOffset, `${context}: next append`).toBeGreaterThanOrEqual(log.lastEnd);
  }
}

async function killAndRecover(flushDiskType: FlushDiskType, backend: Backend, plan: PlanKind,
  run: number, growing = false): Promise<void> {
  const dir = tempDir();
  const delayMs = Math.floor(random() * (growing ? GROWING_KILL_DELAY_MS : MAX_KILL_DELAY_MS));
  const context = `${flushDiskType}/${backend}/${plan} run ${run}, killed ${delayMs} ms after ` +
    `the ${growing ? 'first segment passed 1 MiB' : 'first ack'} (PMQ_CRASH_SEED=${SEED})`;
  // Growing: one segment of 16 MiB, which grows off the main thread past 1 MiB.
  const options = growing ? { ...storeOptions(flushDiskType, backend),
    commitLogSegmentSize: 16 * 2 ** 20 } : storeOptions(flushDiskType, backend);
  const writer = startWriter({
    dir, plan, units: null, groupUnits: plan === 'batch' ? 4 : 16, depth: 4, stepped: false,
    storeOptions: options, after: 'idle',
  });
  await writer.until('the first ack', () => writer.ackedUnits > 0);
  const first = path.join(dir, 'commitlog', '0'.repeat(20));
  if (growing) await writer.until('1 MiB', () => fs.statSync(first).size > 2 ** 20);
  await sleep(delayMs);
  const exit = await writer.kill();
  expect(exit.signal, `${context}: ${writer.lines.slice(-3).join(' / ')}`).toBe('SIGKILL');
  expect(writer.backend, context).toBe(backend);
  expect(fs.existsSync(path.join(dir, 'abort')), `${context}: abort marker`).toBe(true);
  const store = await StoreEngine.open(dir, options);
  try {
    const log = readLog(store, plan, context);
    if (flushDiskType === 'SYNC_FLUSH') {
      expect(writer.ackedSeqs, context).toBeGreaterThan(0);
      expect(log.seqs, `${context}: acknowledged records`).toBeGreaterThanOrEqual(writer.ackedSeqs);
      expect(log.units, `${context}: acknowledged units`).toBeGreaterThanOrEqual(writer.ackedUnits);
    }
    checkQueues(store, log, context);
    checkIndex(store, log, context);
    await appendContinues(store, log, context);
  } finally {
    await store.close();
  }
}

describe('kill -9 of a writer process', () => {
  it('SYNC_FLUSH: every acknowledged record survives, byte for byte, in order', async () => {
    await killAndRecover('SYNC_FLUSH', 'mmap', 'mixed', 1);
    await killAndRecover('SYNC_FLUSH', 'file', 'mixed', 2);
    await killAndRecover('SYNC_FLUSH', 'mmap', 'single', 3);
  });

  it('ASYNC_FLUSH: what survives is a prefix of what was appended, nothing corrupt', async () => {
    await killAndRecover('ASYNC_FLUSH', 'mmap', 'mixed', 1);
    await killAndRecover('ASYNC_FLUSH', 'file', 'mixed', 2);
    await killAndRecover('ASYNC_FLUSH', 'mmap', 'single', 3);
  });

  it('a batch cut by the kill is all or nothing', async () => {
    await killAndRecover('ASYNC_FLUSH', 'mmap', 'batch', 1);
    await killAndRecover('ASYNC_FLUSH', 'file', 'batch', 2);
    await killAndRecover('SYNC_FLUSH', 'mmap', 'batch', 3);
  });
});

describe('kill -9 while the first segment grows', () => {
  it('recovers a prefix, empties what the crash left past it, and appends go on', async () => {
    await killAndRecover('ASYNC_FLUSH', 'mmap', 'single', 1, true);
    await killAndRecover('ASYNC_FLUSH', 'file', 'mixed', 2, true);
  });
});

describe('a store rebuilt after kill -9', () => {
  it('equals the same workload closed cleanly, file for file', async () => {
    const options = {
      ...storeOptions('SYNC_FLUSH', 'mmap'),
      consumeQueueEntriesPerFile: 128, indexHashSlots: 256, indexMaxEntries: 1024,
    };
    const units = 1200;
    const groupUnits = 12;
    const crashedDir = tempDir();
    const cleanDir = tempDir();
    // The writer never flushes ConsumeQueues, index or checkpoint (its timers never fire) and
    // never closes: recovery has to rebuild all of them from the commit log.
    const writer = startWriter({
      dir: crashedDir, plan: 'mixed', units, groupUnits, depth: 1, stepped: true,
      storeOptions: options, after: 'idle',
    });
    const clock = new SteppedClock();
    const clean = await StoreEngine.open(cleanDir, { ...options, clock });
    await drive(clean, new Plan('mixed'), { units, groupUnits, clock, onAck: () => undefined });
    await clean.close();
    await writer.until('done', () => writer.done);
    await writer.kill();

    const progress: number[] = [];
    const a = await StoreEngine.open(cleanDir, { ...options, clock: new SteppedClock() });
    const b = await StoreEngine.open(crashedDir, { ...options, clock: new SteppedClock(),
      onRecoveryProgress: (p) => progress.push(p.checkedBytes) });
    const logics = (rel: string): boolean => !/^(consumequeue|index)\//.test(rel);
    try {
      const logA = readLog(a, 'mixed', 'clean');
      const logB = readLog(b, 'mixed', 'crashed');
      expect(logB.seqs).toBe(logA.seqs);
      expect(logB.units).toBe(units);
      expect(b.recovery?.redispatched).toBe(logB.seqs);
      expect(a.recovery?.redispatched).toBe(0);
      expect(progress.length).toBeGreaterThan(1);
      checkQueues(b, logB, 'crashed');
      checkIndex(b, logB, 'crashed');
      for (const [name, offsets] of logA.queues) {
        const [topic, q] = name.split('/') as [string, string];
        const ra = a.getMessage(topic, Number(q), 0, offsets.length);
        const rb = b.getMessage(topic, Number(q), 0, offsets.length);
        expect(rb.records).toEqual(ra.records);
      }
      for (const { topic, key } of logA.keyed) {
        expect(b.queryMessage(topic, key)).toEqual(a.queryMessage(topic, key));
      }
      for (const key of ['g0', 'g42', 'g96']) {
        for (const topic of ['Orders', 'Payments', 'Audit_log']) {
          expect(b.queryMessage(topic, key, 64)).toEqual(a.queryMessage(topic, key, 64));
        }
      }
      expect(differences(snapshot(cleanDir, logics), snapshot(crashedDir, logics))).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
    const files = snapshot(cleanDir, logics);
    expect([...files.keys()].filter((f) => f.startsWith('index/')).length).toBeGreaterThan(1);
    expect(differences(files, snapshot(crashedDir, logics))).toEqual([]);
  });
});
