/**
 * What the simulator does to a store besides using it: injected ENOSPC/EIO (writes, flushes,
 * opens, atomic writes, reads), bits flipped in reads of the log, kill -9 at the n-th I/O call
 * (in the middle of a turn, a flush or a recovery), and hours passing for retention. Each step
 * says what it did in the trace; the checks it needs are the oracle's.
 */
import { PocketMQError } from '../../lib/errors.js';
import type { FaultCode, SimBackend, SimOp } from '../support/sim-backend.js';
import { RESERVED_MS, type Lifetime } from './lifetime.js';
import { allQueues, int, pick, type Random } from './messages.js';
import type { Oracle } from './oracle.js';
import { failedRead } from './consumers.js';
import type { ProcessDisk } from './process-disk.js';
import { Violation } from './violation.js';
import { storeInternals } from '../../lib/internal.js';

const FAULT_OPS: readonly SimOp[] = ['write', 'flush', 'open', 'writeFile', 'read', 'grow'];
/** What an open may meet: every kind of call recovery makes. */
const OPEN_FAULT_OPS: readonly SimOp[] =
  ['read', 'readFile', 'readdir', 'open', 'write', 'flush', 'writeFile', 'truncate', 'grow',
    'unlink'];
/** An open that meets a fault fails with one of these, or succeeds. */
const OPEN_FAILURE_CODES = new Set(['IO_ERROR', 'DISK_FULL']);
/** Time passes this much at a time when the simulation ages the store. */
const AGE_CHUNK_MS = 60_000;


export interface DisturbanceHost {
  readonly random: Random;
  readonly sim: SimBackend;
  readonly oracle: Oracle;
  current(): Lifetime;
  note(line: string): void;
  count(what: string): void;
  /** Coded failures are expected in this lifetime from now on. */
  markFaulted(): void;
  isFaulted(): boolean;
  /** Reads of the log see a flipped bit in this lifetime. */
  flipped(): void;
  /** Let `ms` pass; returns the new time. */
  advance(ms: number): number;
  /** Let the event loop run `n` turns. */
  turns(n: number): Promise<void>;
}

/** How the next open is disturbed: null, or what was done (for the trace). */
export type OpenDisturbance = { kind: 'kill' | 'fault'; what: string } | null;

export class Disturbances {
  constructor(private readonly host: DisturbanceHost) {}

  /** The next `op` fails with ENOSPC or EIO (reads with EIO). */
  fault(): void {
    const { host } = this;
    const op = pick(host.random, FAULT_OPS);
    const code: FaultCode = host.random() < 0.5 && op !== 'read' ? 'ENOSPC' : 'EIO';
    host.note(`fault ${code} on the next ${op}`);
    host.count(`fault ${op} ${code}`);
    host.markFaulted();
    host.sim.failNext(op, code);
  }

  /** The process dies at one of its next I/O calls: kill -9, wherever it is then. */
  kill(): void {
    const calls = int(this.host.random, 1, 40);
    this.host.note(`kill -9 at the I/O call ${calls} from now`);
    this.host.markFaulted();
    this.host.current().disk.killAfter(calls);
  }

  /**
   * A bit of a stored record reads flipped from now on (the disk's copy is intact: the next
   * lifetime reads it right). A read of that record must fail its checksum: it is never
   * delivered, a poll may fail with CORRUPT_DATA.
   */
  flip(): void {
    const { host } = this;
    const life = host.current();
    const engine = storeInternals(life.store).engine;
    const placed = host.oracle.undecided().concat(host.oracle.durablePlacements())
      .filter((p) => p.phys >= engine.commitLogMinOffset);
    if (placed.length === 0 || !life.isOpen) return;
    const { id, phys } = pick(host.random, placed);
    let size: number;
    try {
      size = engine.lookMessageByOffset(phys)?.size ?? 0;
    } catch (err) {
      if (this.expected(err, life)) return; // an injected read fault, or a killed process
      throw err;
    }
    const file = engine.storage.commitLog.queue.findByOffset(phys);
    if (size === 0 || file === undefined) return;
    const at = phys - file.fileFromOffset + Math.floor(host.random() * size);
    const bit = Math.floor(host.random() * 8);
    host.note(`flip bit ${bit} of byte ${at - phys + file.fileFromOffset} of message ${id}`);
    host.sim.flipBitOnRead(file.path, at, bit);
    host.flipped();
  }

  /**
   * Time passes by minutes or hours: retention runs on the store's timer, or now. Afterwards
   * each queue starts after exactly what retention deleted, all of it old enough.
   */
  async age(): Promise<void> {
    const { host } = this;
    const ms = pick(host.random, [600_000, 1_800_000, RESERVED_MS + 60_000, 2 * RESERVED_MS]);
    const now = host.random() < 0.5;
    host.note(`age ${ms / 60_000} min${now ? ', retention now' : ''}`);
    let nowMs = 0;
    // Half the time the clock jumps at once: retention may then fire before the flush of the
    // newest ConsumeQueue entries completes (seed 1125); otherwise a minute at a time.
    const chunk = host.random() < 0.5 ? ms : AGE_CHUNK_MS;
    for (let left = ms; left > 0; left -= chunk) {
      nowMs = host.advance(Math.min(chunk, left));
      if (left > chunk) await host.turns(2);
    }
    const life = host.current();
    const engine = storeInternals(life.store).engine;
    if (now) {
      try {
        if ((await engine.runRetention()).deletedSegments > 0) host.count('retention deleted');
      } catch (err) {
        // A stopped store deletes nothing (memory and files may disagree until a reopen); a
        // failed read stops it.
        if (!this.expected(err, life)) throw err;
      }
    }
    // A dead process or a stopped store (a failure in the middle of retention) has no say.
    if (!life.isOpen) return;
    for (const q of allQueues()) {
      host.oracle.checkRetention(q, engine.getMinOffsetInQueue(q.topic, q.queueId),
        engine.commitLogMinOffset, nowMs);
    }
  }

  /** Maybe disturb the open about to run on `disk`: kill it at an I/O call, or fail one. */
  beforeOpen(disk: ProcessDisk): OpenDisturbance {
    const { host } = this;
    const r = host.random();
    if (r < 0.08) {
      const calls = int(host.random, 1, 150);
      disk.killAfter(calls, null);
      return { kind: 'kill', what: `kill -9 at I/O call ${calls}` };
    }
    if (r >= 0.16) return null;
    const op = pick(host.random, OPEN_FAULT_OPS);
    const code: FaultCode = host.random() < 0.5 && op !== 'read' && op !== 'readFile' &&
      op !== 'readdir' ? 'ENOSPC' : 'EIO';
    host.sim.failNext(op, code);
    return { kind: 'fault', what: `${code} on the next ${op}` };
  }

  /** An open disturbed by `what` failed with `err`: a coded error, or its process died. */
  checkOpenFailure(err: unknown, disk: ProcessDisk, what: string): void {
    if (!disk.isAlive) return;
    const code = err instanceof PocketMQError ? err.code : null;
    if (code === null || !OPEN_FAILURE_CODES.has(code)) {
      throw new Violation(`an open with ${what} failed with ${String(err)}`);
    }
  }

  /** `err` is what a stopped store, a killed process or an injected read fault explains. */
  private expected(err: unknown, life: Lifetime): boolean {
    const code = err instanceof PocketMQError ? err.code : '';
    return !life.isOpen || code === 'STORE_STOPPED' ||
      (this.host.isFaulted() && code === 'IO_ERROR' && failedRead(err));
  }
}
