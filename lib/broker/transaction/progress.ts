/**
 * Which half messages are resolved, in `<dataDir>/config/transaction.json`:
 *
 *   { "half": { "origin": <queue offset>, "bits": "<base64>" },
 *     "op": <next Op queue offset to read>,
 *     "checks": { "<half queue offset>": <checks so far>, ... } }
 *
 * - `half`: the resolved entries of the half queue (DoneBits: committed, rolled back or moved
 *   to the check-max topic); its watermark is the first unresolved half, where the check-back
 *   starts and what retention keeps.
 * - `op`: the Op queue is read up to here into `half`. At open the Op records after it are read
 *   again, so an end of transaction whose Op reached the log after the last write still counts.
 * - `checks`: how often each unresolved half was checked back (only halves checked at least
 *   once), so a restart does not start the count over.
 *
 * Written with the check-back's rounds and at close, each time after the commit log is
 * flushed, so the file never says a half is resolved when its Op is not on disk.
 */
import path from 'node:path';
import type { IoBackend } from '../../store/io/backend.js';
import { JsonConfigFile, parseCountMap, PersistTracker } from '../config-file.js';
import { DoneBits, doneBitsToJson, parseDoneBits } from '../schedule/done-bits.js';

export const TRANSACTION_FILE_NAME = 'transaction.json';

interface Data {
  readonly half: DoneBits;
  op: number;
  readonly checks: Map<number, number>;
}

export interface TransactionProgressOptions {
  readonly backend: IoBackend;
  readonly configDir: string;
  /** Resolves once the commit log is flushed (before each write). */
  readonly beforePersist: () => Promise<void>;
}

export class TransactionProgress {
  private readonly file: JsonConfigFile<Data>;
  private readonly tracker = new PersistTracker();
  private data: Data = { half: new DoneBits(0), op: 0, checks: new Map() };
  /** The last write, settled (the next one starts after it). */
  private writing: Promise<void> = Promise.resolve();
  /** The first unresolved half as the file on disk says (what retention keeps). */
  private baseOnDisk = 0;

  constructor(private readonly options: TransactionProgressOptions) {
    this.file = new JsonConfigFile<Data>({ backend: options.backend,
      path: path.join(options.configDir, TRANSACTION_FILE_NAME), name: 'transaction progress',
      parse: parseProgress, serialize: serializeProgress });
  }

  /** Read the file (CORRUPT_DATA when it is damaged); a missing file is a fresh start. */
  load(): void {
    this.data = this.file.load() ?? this.data;
    this.baseOnDisk = this.data.half.base;
    this.tracker.markPersisted();
  }

  /** The resolved halves. */
  get resolved(): DoneBits {
    return this.data.half;
  }

  /**
   * The first half not resolved as far as the file on disk knows: a half resolved since may
   * have its committed message only in memory, and a crash then leaves the half to the
   * check-back, so its record must still be there.
   */
  get resolvedBaseOnDisk(): number {
    return this.baseOnDisk;
  }

  /** Mark the half at `queueOffset` resolved; false if it already was. */
  resolve(queueOffset: number): boolean {
    if (!this.data.half.set(queueOffset)) return false;
    this.data.checks.delete(queueOffset);
    this.tracker.changed();
    return true;
  }

  /** The next Op queue offset to read. */
  get opOffset(): number {
    return this.data.op;
  }

  set opOffset(offset: number) {
    if (offset === this.data.op) return;
    this.data.op = offset;
    this.tracker.changed();
  }

  /** How often the half at `queueOffset` was checked back. */
  checks(queueOffset: number): number {
    return this.data.checks.get(queueOffset) ?? 0;
  }

  /** Count one more check of the half at `queueOffset`. */
  countCheck(queueOffset: number): void {
    this.data.checks.set(queueOffset, this.checks(queueOffset) + 1);
    this.tracker.changed();
  }

  /** Halves checked at least once and not resolved (held in memory, one number each). */
  get checking(): number {
    return this.data.checks.size;
  }

  /**
   * Write what changed since the last write (after the log is flushed). One write at a time:
   * two overlapping ones could reach the file in the wrong order (a flush can settle sooner
   * for the later one).
   */
  persist(): Promise<void> {
    const run = this.writing.then(() => this.tracker.persist(async () => {
      const snapshot: Data = { half: this.data.half.clone(), op: this.data.op,
        checks: new Map(this.data.checks) };
      await this.options.beforePersist();
      await this.file.save(snapshot);
      this.baseOnDisk = snapshot.half.base;
    }));
    this.writing = run.catch(() => undefined);
    return run;
  }
}

function serializeProgress(data: Data): unknown {
  return {
    half: doneBitsToJson(data.half),
    op: data.op,
    checks: Object.fromEntries([...data.checks].sort((a, b) => a[0] - b[0])),
  };
}

function isOffset(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function parseProgress(raw: unknown): Data {
  const { half, op, checks } = (raw ?? {}) as Record<string, unknown>;
  const resolved = parseDoneBits(half, 'half');
  if (!isOffset(op)) throw new Error('op: expected an Op queue offset');
  return { half: resolved, op,
    checks: parseCountMap(checks, 'checks', 'half queue offset>: <count') };
}
