/**
 * What replication keeps in the data directory, under `<dataDir>/replication/` (docs/format.md):
 *
 * - `promoted.json`: `{"version":1,"promotedAt":<ms>,"offset":<log end at promotion>}`. Written
 *   atomically when a follower is promoted (`promote()`, or `pocketmq promote` on a stopped
 *   follower). A store opened with brokerRole SLAVE on such a directory does not follow: it
 *   opens as a writable master (ASYNC_MASTER), so its own writes since the promotion are never
 *   cut by its old master's log. Remove the file to make the directory follow again.
 * - `status.json`: where replication stands, rewritten about every second while the store runs
 *   (`pocketmq replication` reads it): `{"version":1,"pid","updatedAt","brokerRole","role",
 *   "haPort","minOffset","maxOffset","followers":[{"address","ackOffset","lagBytes",
 *   "connectedAt"}],"master":{"address","connected","offset","masterOffset"}|null,"running"}`.
 * - `epochs.json`: the master epochs of this log (epochs.ts).
 */
import path from 'node:path';
import type { IoBackend } from '../store/io/backend.js';
import type { Clock, TimerHandle } from '../store/clock.js';
import type { Logger } from '../store/options.js';

export const STATE_VERSION = 1;

/** What reading these files needs: a backend, or plain files (the CLI). */
export type FileReader = Pick<IoBackend, 'readFile'>;

export function replicationDir(dir: string): string {
  return path.join(dir, 'replication');
}

export interface Promoted {
  readonly promotedAt: number;
  readonly offset: number;
}

/** The promotion marker, or null (none, or unreadable: then the directory follows). */
export function readPromoted(backend: FileReader, dir: string): Promoted | null {
  const raw = readJson(backend, path.join(replicationDir(dir), 'promoted.json'));
  if (raw === null || raw.version !== STATE_VERSION || !Number.isSafeInteger(raw.promotedAt) ||
    !Number.isSafeInteger(raw.offset)) {
    return null;
  }
  return { promotedAt: raw.promotedAt as number, offset: raw.offset as number };
}

/** Write the promotion marker (tmp, fsync, rename). */
export function writePromoted(backend: IoBackend, dir: string, marker: Promoted): void {
  backend.mkdir(replicationDir(dir));
  backend.writeFileAtomic(path.join(replicationDir(dir), 'promoted.json'),
    Buffer.from(`${JSON.stringify({ version: STATE_VERSION, ...marker })}\n`));
}

/** The last status a running (or stopped) store wrote, or null. */
export function readStatus(backend: FileReader, dir: string): Record<string, unknown> | null {
  const raw = readJson(backend, path.join(replicationDir(dir), 'status.json'));
  return raw !== null && raw.version === STATE_VERSION ? raw : null;
}

function readJson(backend: FileReader, file: string): Record<string, unknown> | null {
  try {
    const bytes = backend.readFile(file);
    if (bytes === null || bytes.length > 1 << 20) return null;
    const value = JSON.parse(bytes.toString('utf8')) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? value as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

/** Writes `status.json` about every `intervalMs` while it changes, and once at stop. */
export class StatusWriter {
  private timer: TimerHandle | null = null;
  private last = '';
  private writing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly backend: IoBackend, private readonly dir: string,
    private readonly clock: Clock, private readonly logger: Logger,
    private readonly snapshot: () => Record<string, unknown>,
    private readonly intervalMs = 1000) {}

  start(): void {
    this.backend.mkdir(replicationDir(this.dir));
    this.write(true);
    this.arm();
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.write(true);
      if (!this.stopped) this.arm();
    }, this.intervalMs);
  }

  private write(running: boolean): void {
    const { updatedAt: _, ...rest } = { updatedAt: 0, ...this.snapshot() };
    const key = JSON.stringify({ ...rest, running });
    if (key === this.last) return;
    this.last = key;
    const text = JSON.stringify({ version: STATE_VERSION, pid: process.pid,
      updatedAt: this.clock.now(), ...rest, running });
    this.writing = this.writing.then(() => this.backend.writeFileAtomicAsync(
      path.join(replicationDir(this.dir), 'status.json'), Buffer.from(`${text}\n`)))
      .catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        this.logger.debug(`pocketmq: replication status not written: ${why}`);
      });
  }

  /** Write the last status (running: false) and stop. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.write(false);
    await this.writing;
  }
}
