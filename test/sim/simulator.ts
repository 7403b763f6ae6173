/**
 * The deterministic simulator (STYLE habit 13, issue 6), after TigerBeetle's VOPR: one seed
 * drives a random workload against a MessageStore on the simulated disk with an injected clock:
 * sends (single and batch, SYNC_FLUSH or ASYNC_FLUSH per store lifetime), polls and offset
 * commits of several pull consumer groups, a push consumer (consumers.ts), clock advances (they
 * run flushes and offset persists) and ages (hours: retention deletes old segments), event-loop
 * turns, injected ENOSPC/EIO (writes, flushes, opens, atomic writes), bits flipped in reads of
 * the log, crashes (drop unflushed writes, keep a random subset, tear the last one, lose new
 * files) and clean closes, each followed by a reopen that the oracle checks.
 *
 * Nothing here reads the wall clock or Math.random: the same seed and step count replay the same
 * run, step for step (`traceHash` proves it). A failure names the seed and step that replay it.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PocketMQError } from '../../lib/errors.js';
import { mulberry32, SimBackend, type CrashMode } from '../support/sim-backend.js';
import { Lifetime, RESERVED_MS } from './lifetime.js';
import {
  allQueues, int, makeMessage, pick, queueName, toMessage, type SimMessage,
} from './messages.js';
import { Oracle, Violation, type Ending } from './oracle.js';
import { SimConsumers } from './consumers.js';
import { LaterSends } from './later.js';
import { Disturbances } from './disturbances.js';
import { ProcessDisk } from './process-disk.js';
import { scanStore } from './store-scan.js';
import { bounded, closeQuietly, turns } from './turns.js';
import { storeInternals } from '../../lib/internal.js';
import { SimFollower } from './follower.js';

export interface SimOptions {
  readonly seed: number;
  readonly steps: number;
  /** Print each step (for replaying a failure). */
  readonly verbose?: boolean;
  readonly log?: (line: string) => void;
  /**
   * Leave in what hits known bugs (docs/testing.md): whatever the simulator does to step around
   * a known bug is skipped with it (docs/testing.md lists them). @default false
   */
  readonly knownBugs?: boolean;
  /** Replicate to a follower (follower.ts) and check it. @default false */
  readonly follower?: boolean;
}

export interface SimReport {
  readonly seed: number;
  readonly steps: number;
  readonly counts: Record<string, number>;
  readonly stats: Record<string, number>;
  readonly traceHash: string;
  /** Null when the run passed. */
  readonly failure: { step: number; message: string; replay: string; trace: string[] } | null;
}

type StepName = 'send' | 'batch' | 'turns' | 'settle' | 'advance' | 'poll' | 'commit' |
  'crash' | 'restart' | 'fault' | 'age' | 'flip' | 'kill' | 'later' | 'tx' | 'cancel';

const WEIGHTS: readonly [StepName, number][] = [
  ['send', 30], ['batch', 8], ['turns', 14], ['settle', 4], ['advance', 12], ['poll', 12],
  ['commit', 6], ['crash', 3], ['restart', 2], ['fault', 2], ['age', 1], ['flip', 1],
  ['kill', 1], ['later', 6], ['tx', 4], ['cancel', 2],
];
const TOTAL_WEIGHT = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);
const CRASH_MODES: readonly CrashMode[] =
  ['drop-unflushed', 'random-subset', 'keep-all', 'lose-new-files'];
/** Errors a send or commit may end with once a fault was injected or its process died. */
const EXPECTED_CODES = new Set(['IO_ERROR', 'DISK_FULL', 'STORE_STOPPED', 'STORE_CLOSED']);
const TRACE_KEPT = 40;

export function replayLine(seed: number, steps: number): string {
  return `PMQ_SIM_SEED=${seed} PMQ_SIM_STEPS=${steps}`;
}

class Simulation {
  private readonly random: () => number;
  private readonly sim: SimBackend;
  private readonly oracle = new Oracle(RESERVED_MS);
  private readonly consumers: SimConsumers;
  private readonly disturb: Disturbances;
  /** Delayed, scheduled and transactional sends (later.ts). */
  private readonly later: LaterSends;
  private readonly follower: SimFollower | null;
  /** What the process had flushed and written when killAfter killed it (this lifetime). */
  private death: { flushed: number; written: number } | null = null;
  private readonly dir: string;
  private life: Lifetime | null = null;
  private nowMs = 1_700_000_000_000;
  private nextId = 0;
  private step = 0;
  /** A fault was injected in this lifetime: coded failures are expected. */
  private faulted = false;
  /** Reads of the log see a flipped bit in this lifetime: a read may fail CORRUPT_DATA. */
  private flipped = false;
  /** This seed ages the clock past the retention time now and then. */
  private readonly aging: boolean;
  /** `sim.faultsFired` when this lifetime opened. */
  private firedAtOpen = 0;
  /** The store is being closed: sends still in flight may be refused. */
  private closing = false;
  private readonly pending = new Set<Promise<void>>();
  private problem: unknown = null;
  private readonly hash = createHash('sha256');
  readonly trace: string[] = [];
  readonly counts: Record<string, number> = {};

  constructor(private readonly options: SimOptions) {
    this.random = mulberry32(options.seed);
    this.aging = this.random() < 0.5;
    this.sim = new SimBackend({ seed: (options.seed ^ 0x5bd1e995) >>> 0 });
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-sim-'));
    this.consumers = new SimConsumers({
      random: this.random, oracle: this.oracle,
      current: () => this.current, note: (line) => this.note(line),
      count: (what) => this.count(what), track: (work) => this.track(work),
      expectCoded: (err, what, lifetime) => this.expectCoded(err, what, lifetime),
      fail: (err) => {
        this.problem ??= err;
      },
      flipped: () => this.flipped,
      faulted: () => this.faulted,
      advance: (ms) => {
        this.advanceClock(ms);
      },
    });
    this.later = new LaterSends({
      random: this.random, oracle: this.oracle, current: () => this.current,
      now: () => this.nowMs, nextId: () => this.nextId++,
      note: (line) => this.note(line), count: (what) => this.count(what),
      track: (work) => this.track(work),
      expectCoded: (err, what, lifetime) => this.expectCoded(err, what, lifetime),
      fail: (err) => {
        this.problem ??= err;
      },
      advance: (ms) => {
        this.advanceClock(ms);
      },
    });
    this.disturb = new Disturbances({
      random: this.random, sim: this.sim, oracle: this.oracle,
      current: () => this.current,
      note: (line) => this.note(line), count: (what) => this.count(what),
      markFaulted: () => {
        this.faulted = true;
      },
      isFaulted: () => this.faulted,
      flipped: () => {
        this.flipped = true;
        this.faulted = true;
      },
      advance: (ms) => this.advanceClock(ms),
      turns,
    });
    this.follower = options.follower !== true ? null : new SimFollower(options.seed, {
      oracle: this.oracle, note: (line) => this.note(line), count: (what) => this.count(what),
      now: () => this.nowMs, advance: (ms) => this.advanceClock(ms), master: () => this.current,
      masterReadsRight: () => this.current.isOpen && !this.faulted && !this.flipped,
    });
  }

  private advanceClock(ms: number): number {
    this.nowMs += ms;
    this.current.clock.advance(ms);
    this.follower?.advance(ms);
    return this.nowMs;
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
      this.life = await Lifetime.open(this.dir, new ProcessDisk(this.sim), this.random,
        this.nowMs, true, this.follower?.masterOptions());
      if (this.follower !== null) await this.follower.open();
      this.watchDeath();
      this.oracle.recovered([], 0, 0, 'clean', this.nowMs);
      await this.consumers.startPush();
      await this.later.started(true);
      for (this.step = 1; this.step <= this.options.steps; this.step++) {
        if (this.follower !== null) await this.follower.step();
        await this.runStep(this.choose());
        if (this.problem !== null) throw this.problem;
      }
      this.step = this.options.steps + 1;
      await this.settle();
      // The push consumer catches up on a store with no fault left.
      if (!this.current.isOpen || this.faulted || this.flipped) await this.restart(false);
      await this.consumers.drain(this.later.model);
      await this.later.finish();
      if (this.problem !== null) throw this.problem;
      await this.restart(false);
      if (this.problem !== null) throw this.problem;
      // The reopen's scan may find records whose send never answered (a SYNC_MASTER send
      // waiting on a stalled follower when the store closed): time passes until they are due.
      await this.later.finish();
      if (this.problem !== null) throw this.problem;
      this.later.model.checkEnd();
      if (this.follower !== null) await this.follower.finish();
    } finally {
      if (this.follower !== null) await this.follower.close();
      if (this.life !== null) {
        this.life.disk.kill();
        await closeQuietly(this.closeStore(this.life));
      }
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }

  get stepNumber(): number {
    return this.step;
  }

  get stats(): Record<string, number> {
    return { ...this.oracle.stats, ...this.consumers.pushed.stats, ...this.later.model.stats,
      ...this.follower?.stats };
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
    if (name !== 'age' || this.aging) this.count(name);
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
      case 'poll': return this.consumers.poll();
      case 'commit': return this.consumers.commit();
      case 'crash': return this.crash();
      case 'restart': return this.restart(this.random() < 0.3);
      case 'fault': return this.disturb.fault();
      case 'age': return this.aging ? this.disturb.age() : turns(1);
      case 'flip': return this.disturb.flip();
      case 'kill': return this.disturb.kill();
      case 'later': return this.later.sendDelayed();
      // With a follower, a half stored FLUSH_SLAVE_TIMEOUT may be checked back before its
      // producer rolls it back: later-model.ts does not know that yet (docs/testing.md).
      case 'tx': return this.follower === null ? this.later.sendTx() : turns(1);
      case 'cancel': return this.later.cancel();
    }
  }

  private async send(count: number): Promise<void> {
    const life = this.current;
    const q = pick(this.random, allQueues());
    const msgs: SimMessage[] = [];
    for (let i = 0; i < count; i++) msgs.push(makeMessage(this.random, this.nextId++, q));
    for (const m of msgs) this.oracle.sent(m, life.mode, this.nowMs);
    const ids = msgs.map((m) => m.id);
    this.note(`${count === 1 ? 'send' : 'batch'} ${ids.join(',')} -> ${queueName(q)}`);
    const lifetime = this.oracle.lifetime;
    const selector = (): number => q.queueId;
    const results = count === 1
      ? life.producer.send(toMessage(msgs[0]!), { selector }).then((r) => [r])
      : life.producer.sendBatch(msgs.map(toMessage), { selector });
    // A killed process's results reach no application.
    this.track(results.then((rs) => {
      if (!life.disk.isAlive) return;
      rs.forEach((r, i) => {
        if (r.topic !== q.topic || r.queueId !== q.queueId) {
          throw new Violation(`send ${ids[i]} to ${queueName(q)} went to ${r.topic}/${r.queueId}`);
        }
        this.oracle.acked(ids[i]!, r.status, r.queueOffset, r.commitLogOffset);
        this.follower?.acked(ids[i]!, r);
      });
    }, (err: unknown) => {
      if (!life.disk.isAlive) return;
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
    this.advanceClock(ms);
    await turns(1);
  }

  /** What this lifetime's process has flushed and written to its files (no I/O). */
  private reach(): { flushed: number; written: number } {
    const engine = storeInternals(this.current.store).engine;
    return { flushed: engine.commitLogFlushedOffset,
      written: engine.storage.commitLog.queue.publishedWhere };
  }

  /**
   * Messages placed in this lifetime that lie below the flushed offset are durable now; with
   * `inFiles`, those below the end of what was written to the files must survive a reopen
   * without a crash. (Both offsets lie at record boundaries: windows are written whole.)
   */
  private markFlushed(at: { flushed: number; written: number }, inFiles: boolean): void {
    this.later.model.markFlushed(at.flushed);
    for (const { id, phys } of this.oracle.undecided()) {
      if (phys < at.flushed) this.oracle.markDurable(id);
      else if (inFiles && phys < at.written) this.oracle.markInFiles(id);
    }
  }

  /** Watch this lifetime's process: when killAfter kills it, note what it had written. */
  private watchDeath(): void {
    this.death = null;
    const disk = this.current.disk;
    disk.onKill = () => {
      this.death = this.reach();
      this.count('killed');
    };
  }

  /**
   * Open the next lifetime; maybe its recovery meets an injected fault (it must then fail with
   * a coded error, or succeed) or its process is killed at an I/O call (then maybe the power
   * goes too), and the open runs again. Returns how the last lifetime counts as ended now.
   */
  private async openDisturbed(previous: Ending): Promise<Ending> {
    let ending = previous;
    for (let attempt = 0; ; attempt++) {
      this.sim.clearFaults();
      this.firedAtOpen = this.sim.faultsFired;
      const disk = new ProcessDisk(this.sim);
      const disturbance = attempt === 0 ? this.disturb.beforeOpen(disk) : null;
      if (disturbance !== null) this.note(`open with ${disturbance.what}`);
      try {
        this.life = await Lifetime.open(this.dir, disk, this.random, this.nowMs, false,
          this.follower?.masterOptions());
      } catch (err) {
        this.life = null;
        if (disturbance === null) throw new Violation(`reopen after ${ending} failed: ${err}`);
        this.disturb.checkOpenFailure(err, disk, disturbance.what);
        ending = this.afterFailedOpen(disk, ending);
        continue;
      }
      if (disturbance?.kind === 'kill' && !disk.isAlive) {
        // The kill fired in work the open started in the background (a scheduled delivery):
        // the open resolved, but its process is dead all the same (its lock goes with it).
        await this.closeStore(this.life).catch(() => undefined);
        this.life = null;
        ending = this.afterFailedOpen(disk, ending);
        continue;
      }
      if (disturbance?.kind === 'fault') {
        // The fault was for the open only; if it fired, coded failures may follow.
        this.sim.clearFaults();
        this.faulted = this.sim.faultsFired > this.firedAtOpen;
      }
      if (disturbance?.kind === 'kill') disk.killAfter(Infinity); // it did not fire: recovered
      this.watchDeath();
      return ending;
    }
  }

  /** An open failed: a coded error, or its process died (and maybe the power went too). */
  private afterFailedOpen(disk: ProcessDisk, ending: Ending): Ending {
    const killed = !disk.isAlive;
    this.count(killed ? 'open killed' : 'open failed');
    const powerCut = killed && this.random() < 0.5;
    this.note(`${killed ? 'the opening process died' : 'the open failed with a coded error'}` +
      `${powerCut ? ', power cut' : ''}`);
    if (!powerCut) return ending;
    this.sim.crash({ mode: pick(this.random, CRASH_MODES), tear: this.random() < 0.5 });
    // A clean close flushed everything: nothing more may be lost than before.
    return ending === 'clean' ? 'clean' : 'crash';
  }

  private logWriteFailed(): boolean {
    const log = `${path.sep}commitlog${path.sep}`;
    return this.sim.firedSince(this.firedAtOpen).some((f) => f.op === 'write' &&
      f.path.includes(log));
  }

  private async crash(): Promise<void> {
    const mode = pick(this.random, CRASH_MODES);
    const tear = this.random() < 0.5;
    if (this.current.disk.isAlive) this.markFlushed(this.reach(), false);
    else if (this.death !== null) this.markFlushed(this.death, false);
    const report = this.sim.crash({ mode, tear });
    this.current.disk.kill();
    this.oracle.endLifetime();
    this.note(`crash ${mode}${tear ? ' torn' : ''}: kept ${report.keptWrites}, dropped ` +
      `${report.droppedWrites}, lost files ${report.lostFiles.length}`);
    await closeQuietly(this.closeStore(this.current));
    await this.reopen('crash');
  }

  /** Close a lifetime's store (with a follower, its clock runs meanwhile: follower.ts). */
  private closeStore(life: Lifetime): Promise<void> {
    return this.follower?.closing(life.clock, life.store.close()) ?? life.store.close();
  }

  /** Close (then maybe lose power with the machine idle) and reopen. */
  private async restart(powerCut: boolean): Promise<void> {
    const life = this.current;
    const wasOpen = life.isOpen && !this.faulted;
    if (life.disk.isAlive) this.markFlushed(this.reach(), true);
    let closed = true;
    this.closing = true;
    try {
      await bounded(this.closeStore(life), 'close');
    } catch (err) {
      if (wasOpen) throw new Violation(`clean close failed: ${String(err)}`);
      closed = false;
    }
    await turns(2); // results that close released reach the application
    this.closing = false;
    life.disk.kill();
    this.oracle.endLifetime();
    const clean = closed && wasOpen;
    if (clean) {
      this.oracle.closedCleanly();
      this.later.model.closedCleanly();
    }
    // A store stopped by a failed write to its log, or a process killed at an I/O call, lost
    // what it had not written: as in a crash, but what it had written must be there.
    if (this.death !== null) this.markFlushed(this.death, true);
    const stopped = !clean && this.logWriteFailed();
    const killed = !clean && this.death !== null;
    const how = clean ? 'clean' : stopped ? 'stopped by a failed write'
      : killed ? 'killed' : 'after a fault';
    this.count(`close ${how}`);
    this.note(`close (${how})${powerCut ? ', power cut' : ''}`);
    if (powerCut) this.sim.crash({ mode: 'drop-unflushed' });
    await this.reopen(clean ? 'clean' : powerCut ? 'crash' : stopped || killed ? 'stopped'
      : 'abandoned');
  }

  private async reopen(previous: Ending): Promise<void> {
    await turns(2);
    if (this.follower !== null) await this.follower.beforeMasterReopens();
    this.pending.clear();
    this.faulted = false;
    this.flipped = false;
    const ending = await this.openDisturbed(previous);
    const life = this.current;
    const scan = scanStore(life.store, this.random);
    this.oracle.recovered(scan.records, scan.logMin, scan.logEnd, ending, this.nowMs);
    this.follower?.masterRecovered(scan.records, scan.logMin);
    this.later.recovered({ ...scan, records: scan.later }, ending);
    await this.consumers.checkAfterReopen(scan.records, scan.copies, ending);
    this.note(`reopen ${life.mode} after ${ending}: ${scan.records.length} messages, log end ` +
      `${scan.logEnd}`);
    await this.consumers.startPush();
    await this.later.started(false);
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
