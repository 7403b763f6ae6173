/**
 * The deterministic simulator (STYLE habit 13, issue 6), after TigerBeetle's VOPR: one seed
 * drives a random workload against a MessageStore on the simulated disk with an injected clock:
 * sends (single and batch, SYNC_FLUSH or ASYNC_FLUSH per store lifetime), consumer polls and
 * offset commits, clock advances (they run flushes and offset persists), event-loop turns,
 * injected ENOSPC/EIO, crashes (drop unflushed writes, keep a random subset, tear the last one,
 * lose new files) and clean closes, each followed by a reopen that the oracle checks.
 *
 * Nothing here reads the wall clock or Math.random: the same seed and step count replay the same
 * run, step for step (`traceHash` proves it). A failure names the seed and step that replay it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PocketMQError } from '../../lib/errors.js';
import { mulberry32, SimBackend, type CrashMode, type FaultCode, type SimOp } from
  '../support/sim-backend.js';
import { Lifetime } from './lifetime.js';
import {
  allQueues, int, makeMessage, pick, queueName, toMessage, type QueueRef, type SimMessage,
} from './messages.js';
import { Oracle, Violation, type Ending } from './oracle.js';
import { scanStore } from './store-scan.js';
import { bounded, closeQuietly, turns } from './turns.js';

export interface SimOptions {
  readonly seed: number;
  readonly steps: number;
  /** Print each step (for replaying a failure). */
  readonly verbose?: boolean;
  readonly log?: (line: string) => void;
  /** Also inject the faults that trigger the known bugs (see the report). @default false */
  readonly knownBugs?: boolean;
}

export interface SimReport {
  readonly seed: number;
  readonly steps: number;
  readonly counts: Record<string, number>;
  readonly stats: Oracle['stats'];
  readonly traceHash: string;
  /** Null when the run passed. */
  readonly failure: { step: number; message: string; replay: string; trace: string[] } | null;
}

type StepName = 'send' | 'batch' | 'turns' | 'settle' | 'advance' | 'poll' | 'commit' |
  'crash' | 'restart' | 'fault';

const WEIGHTS: readonly [StepName, number][] = [
  ['send', 30], ['batch', 8], ['turns', 14], ['settle', 4], ['advance', 12], ['poll', 12],
  ['commit', 6], ['crash', 3], ['restart', 2], ['fault', 2],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);
const CRASH_MODES: readonly CrashMode[] =
  ['drop-unflushed', 'random-subset', 'keep-all', 'lose-new-files'];
const FAULT_OPS: readonly SimOp[] = ['write', 'flush', 'open', 'writeFile'];
const SAFE_FAULT_OPS: readonly SimOp[] = ['flush', 'open', 'writeFile'];
/** Errors a send or commit may end with once a fault was injected or its process died. */
const EXPECTED_CODES = new Set(['IO_ERROR', 'DISK_FULL', 'STORE_STOPPED', 'STORE_CLOSED']);
const TRACE_KEPT = 40;

export function replayLine(seed: number, steps: number): string {
  return `PMQ_SIM_SEED=${seed} PMQ_SIM_STEPS=${steps}`;
}

class Simulation {
  private readonly random: () => number;
  private readonly sim: SimBackend;
  private readonly oracle = new Oracle();
  private readonly dir: string;
  private life: Lifetime | null = null;
  private nowMs = 1_700_000_000_000;
  private nextId = 0;
  private step = 0;
  /** A fault was injected in this lifetime: coded failures are expected. */
  private faulted = false;
  /** The store is being closed: sends still in flight may be refused. */
  private closing = false;
  private readonly pending = new Set<Promise<void>>();
  private problem: unknown = null;
  private readonly hash = createHash('sha256');
  readonly trace: string[] = [];
  readonly counts: Record<string, number> = {};

  constructor(private readonly options: SimOptions) {
    this.random = mulberry32(options.seed);
    this.sim = new SimBackend({ seed: (options.seed ^ 0x5bd1e995) >>> 0 });
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-sim-'));
  }

  get traceHash(): string {
    return this.hash.copy().digest('hex').slice(0, 16);
  }

  private note(line: string): void {
    const entry = `#${this.step} ${line}`;
    this.hash.update(`${entry}\n`);
    this.trace.push(entry);
    if (this.trace.length > TRACE_KEPT) this.trace.shift();
    if (this.options.verbose === true) this.options.log?.(entry);
  }

  private count(what: string): void {
    this.counts[what] = (this.counts[what] ?? 0) + 1;
  }

  private get current(): Lifetime {
    return this.life!;
  }

  /** Keep a promise of this lifetime; what it throws fails the run at the next step. */
  private track(work: Promise<void>): void {
    const p = work.catch((err: unknown) => {
      this.problem ??= err;
    }).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** A send or commit failed: fine with a coded error once a fault or a crash explains it. */
  private expectCoded(err: unknown, what: string, lifetime: number): void {
    const code = err instanceof PocketMQError ? err.code : null;
    const explained = lifetime !== this.oracle.lifetime || this.faulted || this.closing;
    if (code === null || !EXPECTED_CODES.has(code) || !explained) {
      const detail = err instanceof Error ? `${err.name} ${code ?? ''}: ${err.message}` : err;
      throw new Violation(`${what} failed: ${String(detail)}` +
        (explained ? '' : ' (no fault injected, no crash)'));
    }
    this.count(`error ${code}`);
  }

  async run(): Promise<void> {
    try {
      this.life = await Lifetime.open(this.dir, this.sim, this.random, this.nowMs, true);
      this.oracle.recovered([], 0, 'clean');
      for (this.step = 1; this.step <= this.options.steps; this.step++) {
        await this.runStep(this.choose());
        if (this.problem !== null) throw this.problem;
      }
      this.step = this.options.steps + 1;
      await this.settle();
      await this.restart(false);
      if (this.problem !== null) throw this.problem;
    } finally {
      if (this.life !== null) {
        this.life.disk.kill();
        await closeQuietly(this.life.store.close());
      }
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  get stepNumber(): number {
    return this.step;
  }

  get stats(): Oracle['stats'] {
    return this.oracle.stats;
  }

  private choose(): StepName {
    if (!this.current.isOpen) return this.random() < 0.5 ? 'crash' : 'restart';
    let r = this.random() * TOTAL_WEIGHT;
    for (const [name, weight] of WEIGHTS) {
      if ((r -= weight) < 0) return name;
    }
    return 'turns';
  }

  private async runStep(name: StepName): Promise<void> {
    this.count(name);
    switch (name) {
      case 'send': return this.send(1);
      case 'batch': return this.send(int(this.random, 1, 6));
      case 'turns': {
        const n = int(this.random, 1, 4);
        this.note(`turns ${n}`);
        return turns(n);
      }
      case 'settle': return this.settle();
      case 'advance': return this.advance();
      case 'poll': return this.poll();
      case 'commit': return this.commit();
      case 'crash': return this.crash();
      case 'restart': return this.restart(this.random() < 0.3);
      case 'fault': return this.fault();
    }
  }

  private async send(count: number): Promise<void> {
    const life = this.current;
    const q = pick(this.random, allQueues());
    const msgs: SimMessage[] = [];
    for (let i = 0; i < count; i++) msgs.push(makeMessage(this.random, this.nextId++, q));
    for (const m of msgs) this.oracle.sent(m, life.mode);
    const ids = msgs.map((m) => m.id);
    this.note(`${count === 1 ? 'send' : 'batch'} ${ids.join(',')} -> ${queueName(q)}`);
    const lifetime = this.oracle.lifetime;
    const selector = (): number => q.queueId;
    const results = count === 1
      ? life.producer.send(toMessage(msgs[0]!), { selector }).then((r) => [r])
      : life.producer.sendBatch(msgs.map(toMessage), { selector });
    this.track(results.then((rs) => {
      rs.forEach((r, i) => {
        if (r.topic !== q.topic || r.queueId !== q.queueId) {
          throw new Violation(`send ${ids[i]} to ${queueName(q)} went to ${r.topic}/${r.queueId}`);
        }
        this.oracle.acked(ids[i]!, r.status, r.queueOffset, r.commitLogOffset);
      });
    }, (err: unknown) => {
      this.expectCoded(err, `send ${ids.join(',')}`, lifetime);
      for (const id of ids) this.oracle.failed(id);
    }));
  }

  /** Let every send and commit in flight finish (if they can without the clock). */
  private async settle(): Promise<void> {
    this.note('settle');
    for (let i = 0; i < 200 && this.pending.size > 0; i++) await turns(1);
  }

  private async advance(): Promise<void> {
    const ms = pick(this.random, [1, 10, 50, 200, 600, 1500, 5000]);
    this.note(`advance ${ms} ms`);
    this.nowMs += ms;
    this.current.clock.advance(ms);
    await turns(1);
  }

  private async poll(): Promise<void> {
    const life = this.current;
    let got;
    try {
      got = await life.consumer.poll(0);
    } catch (err) {
      if (!life.isOpen && err instanceof PocketMQError && EXPECTED_CODES.has(err.code)) return;
      throw new Violation(`poll failed: ${String(err)}`);
    }
    this.note(`poll ${got.map((m) => `${queueName(m)}@${m.queueOffset}`).join(' ')}`);
    for (const ext of got) this.oracle.delivered(ext);
    for (const q of allQueues()) {
      const at = life.consumer.position(q);
      if (at !== this.oracle.nextOffset(q)) {
        throw new Violation(`consumer position of ${queueName(q)} is ${at}, delivered up to ` +
          `${this.oracle.nextOffset(q)}`);
      }
    }
  }

  private async commit(): Promise<void> {
    const life = this.current;
    const positions = new Map(allQueues().map((q) => [queueName(q), life.consumer.position(q)]));
    this.note(`commit ${[...positions.values()].join(',')}`);
    const token = this.oracle.committing(positions);
    const lifetime = this.oracle.lifetime;
    this.track(life.consumer.commit().then(() => token.persisted(),
      (err: unknown) => this.expectCoded(err, 'commit', lifetime)));
  }

  private async fault(): Promise<void> {
    // Known bug 2 (report): a failed write at the end of a turn (the commit of staged commit-log
    // or ConsumeQueue bytes) is thrown from a setImmediate callback, an uncaught exception.
    const op = pick(this.random, this.options.knownBugs === true ? FAULT_OPS : SAFE_FAULT_OPS);
    const code: FaultCode = this.random() < 0.5 ? 'ENOSPC' : 'EIO';
    this.note(`fault ${code} on the next ${op}`);
    this.count(`fault ${op} ${code}`);
    this.sim.failNext(op, code);
    this.faulted = true;
  }

  /** Messages placed in this lifetime that lie below the flushed offset are durable now. */
  private markFlushed(): void {
    const engine = this.current.store.engine;
    const flushed = engine.commitLogFlushedOffset;
    for (const { id, phys } of this.oracle.undecided()) {
      if (phys >= flushed) continue;
      const rec = engine.lookMessageByOffset(phys);
      if (rec !== null && phys + rec.size <= flushed) this.oracle.markDurable(id);
    }
  }

  private async crash(): Promise<void> {
    const mode = pick(this.random, CRASH_MODES);
    const tear = this.random() < 0.5;
    if (this.current.disk.isAlive) this.markFlushed();
    const report = this.sim.crash({ mode, tear });
    this.current.disk.kill();
    this.oracle.endLifetime();
    this.note(`crash ${mode}${tear ? ' torn' : ''}: kept ${report.keptWrites}, dropped ` +
      `${report.droppedWrites}, lost files ${report.lostFiles.length}`);
    await closeQuietly(this.current.store.close());
    await this.reopen('crash');
  }

  /** Close (then maybe lose power with the machine idle) and reopen. */
  private async restart(powerCut: boolean): Promise<void> {
    const life = this.current;
    const wasOpen = life.isOpen && !this.faulted;
    let closed = true;
    this.closing = true;
    try {
      await bounded(life.store.close(), 'close');
    } catch (err) {
      if (wasOpen) throw new Violation(`clean close failed: ${String(err)}`);
      closed = false;
    }
    await turns(2); // results that close released reach the application
    this.closing = false;
    life.disk.kill();
    this.oracle.endLifetime();
    const clean = closed && wasOpen;
    if (clean) this.oracle.closedCleanly();
    this.note(`close (${clean ? 'clean' : 'after a fault'})${powerCut ? ', power cut' : ''}`);
    if (powerCut) this.sim.crash({ mode: 'drop-unflushed' });
    await this.reopen(clean ? 'clean' : powerCut ? 'crash' : 'abandoned');
  }

  private async reopen(ending: Ending): Promise<void> {
    await turns(2);
    this.pending.clear();
    this.sim.clearFaults();
    this.faulted = false;
    try {
      this.life = await Lifetime.open(this.dir, this.sim, this.random, this.nowMs, false);
    } catch (err) {
      this.life = null;
      throw new Violation(`reopen after ${ending} failed: ${String(err)}`);
    }
    const life = this.life;
    const scan = scanStore(life.store, this.random);
    this.oracle.recovered(scan.records, scan.logEnd, ending);
    for (const q of allQueues()) this.checkCommitted(life, q, ending);
    this.note(`reopen ${life.mode} after ${ending}: ${scan.records.length} messages, log end ` +
      `${scan.logEnd}`);
  }

  private checkCommitted(life: Lifetime, q: QueueRef, ending: Ending): void {
    const committed = life.consumer.committed(q);
    const max = life.store.engine.getMaxOffsetInQueue(q.topic, q.queueId);
    this.oracle.committedAfterReopen(q, committed, max, ending);
  }
}

/** Run one seed; never throws for a failed oracle check, it reports it. */
export async function runSimulation(options: SimOptions): Promise<SimReport> {
  const sim = new Simulation(options);
  let failure: SimReport['failure'] = null;
  try {
    await sim.run();
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    failure = { step: sim.stepNumber, message, trace: [...sim.trace],
      replay: replayLine(options.seed, Math.min(sim.stepNumber, options.steps)) };
  }
  return { seed: options.seed, steps: options.steps, counts: sim.counts, stats: sim.stats,
    traceHash: sim.traceHash, failure };
}
