/**
 * kill -9 of a process sending in transactions (test/fixtures/transaction-child.mjs): killed at
 * a seeded random moment (with local transactions in flight, some never to answer), or between
 * a commit's two writes (its message stored, its Op record not). After a reopen with a producer
 * that answers check-backs, every committed message is delivered (at most twice), none rolled
 * back is, and every half message is resolved.
 * Replay a failure with PMQ_TX_CRASH_SEED=<seed> npx vitest run test/client/transaction-crash.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DoneBits } from '../../lib/broker/schedule/done-bits.js';
import { useTempDirs } from '../support/backends.js';
import { spawnLines } from '../support/child.js';
import { ensureBuilt } from '../support/dist.js';
import { counts, openStore, Recorder, settle, startPush, until } from '../support/messaging.js';
import { mulberry32 } from '../support/sim-backend.js';
import { storeFiles } from '../support/test-backend.js';
import { TxListener } from '../support/transactions.js';

const SEED = Number(process.env.PMQ_TX_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const random = mulberry32(SEED);
console.log(`transaction-crash.test: seed ${SEED} (replay with PMQ_TX_CRASH_SEED=${SEED})`);

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures',
  'transaction-child.mjs');
const MAX_KILL_DELAY_MS = 200;

const tmp = useTempDirs('pmq-tx-crash-');
const children: ChildProcess[] = [];

beforeAll(() => ensureBuilt());
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
});

/** How message `i` must end (the child's rule). */
function decide(i: number): 'COMMIT_MESSAGE' | 'ROLLBACK_MESSAGE' {
  return i % 3 === 0 ? 'ROLLBACK_MESSAGE' : 'COMMIT_MESSAGE';
}

interface Run {
  /** Half messages the child saw stored: i -> msgId. */
  readonly halves: Map<number, string>;
  /** The commit killed between its two writes, if any. */
  readonly blocked: number | null;
}

/** Run the child until `ready(run)` says so (plus a seeded delay), then SIGKILL it. */
async function runAndKill(dir: string, config: object, ready: (run: Run) => boolean,
  delayMs: number, context: string): Promise<Run> {
  const run = { halves: new Map<number, string>(), blocked: null as number | null };
  const errors: string[] = [];
  const child = spawnLines(CHILD, { dir, ...config }, (line) => {
    const [word, i, msgId] = line.split(' ');
    if (word === 'half') run.halves.set(Number(i), msgId!);
    else if (word === 'op-blocked') run.blocked = Number(i);
    else if (word === 'error') errors.push(line);
  });
  children.push(child.process);
  await until(() => ready(run) || child.exited, `${context}: the child's progress`, 30_000);
  expect(child.exited, `${context}: ${errors.join(' / ')} ${child.stderr}`).toBe(false);
  await sleep(delayMs);
  child.process.kill('SIGKILL');
  expect(await child.closed, context).toBe('SIGKILL');
  expect(errors).toEqual([]);
  return run;
}

/**
 * Reopen with a producer that answers check-backs as the child's rule says; every half gets
 * resolved. Returns how often each message was delivered, by body.
 */
async function recoverAndConsume(dir: string, run: Run, context: string):
  Promise<Map<string, number>> {
  const store = await openStore(dir, { transactionTimeoutMs: 0, transactionCheckIntervalMs: 10 });
  try {
    const checker = new TxListener(() => 'UNKNOWN', (m) => decide(Number(m.body)));
    store.createProducer({ group: 'txg', transactionListener: checker });
    const rec = new Recorder();
    await startPush(store, { group: 'cg', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, 'tx',
      rec.listener);
    const halves = await store.maxOffset('RMQ_SYS_TRANS_HALF_TOPIC', 0);
    expect(halves, context).toBeGreaterThanOrEqual(run.halves.size);
    const committed = [...run.halves.keys()].filter((i) => decide(i) === 'COMMIT_MESSAGE');
    await until(() => {
      const seen = new Set(rec.bodies);
      return committed.every((i) => seen.has(String(i)));
    }, `${context}: every committed message delivered`, 30_000);
    // Every half resolved: one Op record each, and the first unresolved half past the last.
    await until(async () => await store.maxOffset('RMQ_SYS_TRANS_OP_HALF_TOPIC', 0) === halves,
      `${context}: every half resolved`, 30_000);
    await settle();
    for (const m of rec.messages) {
      const i = Number(m.body);
      const sent = run.halves.get(i);
      if (sent !== undefined) expect(m.msgId, `${context}: ${i}`).toBe(sent);
    }
    const delivered = counts(rec.bodies);
    await store.close();
    const data = (JSON.parse(storeFiles(dir).readFile('config/transaction.json')!
      .toString('utf8')) as { data: { half: { origin: number; bits: string } } }).data;
    expect(new DoneBits(data.half.origin, Buffer.from(data.half.bits, 'base64')).base)
      .toBe(halves);
    return delivered;
  } finally {
    await store.close();
  }
}

function checkDelivered(run: Run, delivered: Map<string, number>, context: string): void {
  for (const [body, n] of delivered) {
    const i = Number(body);
    expect(decide(i), `${context}: ${i} delivered ${n} times`).toBe('COMMIT_MESSAGE');
    expect(n, `${context}: ${i} delivered ${n} times`).toBeLessThanOrEqual(2);
  }
  for (const i of run.halves.keys()) {
    if (decide(i) === 'COMMIT_MESSAGE') {
      expect(delivered.get(String(i)), `${context}: ${i} never delivered`).toBeGreaterThan(0);
    }
  }
}

describe('kill -9 of a process sending in transactions', () => {
  it('at a random moment: committed ones delivered, rolled-back ones not', async () => {
    const dir = tmp.make();
    const context = `PMQ_TX_CRASH_SEED=${SEED}`;
    const delayMs = Math.floor(random() * MAX_KILL_DELAY_MS);
    const run = await runAndKill(dir, { inFlight: 4 }, (r) => r.halves.size >= 60, delayMs,
      `${context}, killed ${delayMs} ms after 60 halves`);
    // Local transactions that never answered were cut between the half and the end.
    expect([...run.halves.keys()].filter((i) => i % 7 === 6).length).toBeGreaterThan(0);
    checkDelivered(run, await recoverAndConsume(dir, run, context), context);
  });

  it('between a commit\'s two writes: the message once or twice, never lost', async () => {
    const dir = tmp.make();
    const blockAt = 10 + Math.floor(random() * 20);
    const context = `PMQ_TX_CRASH_SEED=${SEED}, Op of commit ${blockAt} blocked`;
    const run = await runAndKill(dir, { inFlight: 2, blockCommitOp: blockAt },
      (r) => r.blocked !== null, 0, context);
    expect(run.blocked, context).not.toBeNull();
    // The kill left the commit's message in its topic and the half unresolved.
    const store = await openStore(dir, { transactionTimeoutMs: 0 });
    try {
      expect(await store.queryMessage({ topic: 'tx', key: `k${run.blocked}` }), context)
        .toHaveLength(1);
    } finally {
      await store.close();
    }
    const delivered = await recoverAndConsume(dir, run, context);
    checkDelivered(run, delivered, context);
    // Stored by the commit, then again by the check-back: the one duplicate allowed.
    expect(delivered.get(String(run.blocked)), context).toBe(2);
  });
});
