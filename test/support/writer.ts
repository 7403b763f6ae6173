/**
 * The parent's side of test/fixtures/crash-writer.mjs: spawn it, count what it acknowledged
 * (complete stdout lines only: a line cut by the kill counts for nothing), kill it with SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreOptions } from '../../lib/store/options.js';
import type { PlanKind } from './workload.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const WRITER = path.join(here, '..', 'fixtures', 'crash-writer.mjs');

export interface WriterConfig {
  readonly dir: string;
  readonly plan: PlanKind;
  /** Units to append; null: until killed. */
  readonly units: number | null;
  readonly groupUnits: number;
  readonly depth: number;
  /** Use the workload's SteppedClock (deterministic timestamps, timers never fire). */
  readonly stepped: boolean;
  /** Plain JSON options (no clock, logger or callbacks: they cannot cross the process). */
  readonly storeOptions: Omit<StoreOptions, 'clock' | 'logger' | 'onRecoveryProgress'>;
  /** After `done`: close cleanly and exit, or keep the store open until killed. */
  readonly after: 'close' | 'idle';
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class Writer {
  /** Units and records acknowledged PUT_OK, as far as complete lines told us. */
  ackedUnits = 0;
  ackedSeqs = 0;
  done = false;
  backend = '';
  readonly lines: string[] = [];
  private partial = '';
  private stderr = '';
  private waiters: { test: () => boolean; resolve: () => void }[] = [];
  private readonly exited: Promise<Exit>;
  private exit: Exit | null = null;
  private readonly child: ChildProcess;

  constructor(readonly config: WriterConfig) {
    this.child = spawn(process.execPath, [WRITER, JSON.stringify(config)],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.take(chunk));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    // 'close': the process is gone AND its stdout is drained, so every line it wrote is counted.
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.exit = { code, signal };
        for (const w of this.waiters) w.resolve();
        this.waiters = [];
        resolve(this.exit);
      });
    });
  }

  private take(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop()!;
    for (const line of parts) this.line(line);
    this.waiters = this.waiters.filter((w) => {
      if (!w.test()) return true;
      w.resolve();
      return false;
    });
  }

  private line(line: string): void {
    this.lines.push(line);
    const [word, a, b] = line.split(' ');
    if (word === 'ack' || word === 'done') {
      const units = Number(a);
      const seqs = Number(b);
      if (!(units >= this.ackedUnits && seqs >= this.ackedSeqs)) {
        this.lines.push(`error acknowledged out of order: ${line} after ${this.ackedSeqs}`);
        return;
      }
      this.ackedUnits = units;
      this.ackedSeqs = seqs;
      if (word === 'done') this.done = true;
    } else if (word === 'ready') {
      this.backend = a ?? '';
    }
  }

  /** Resolves once `test` holds; fails if the writer exits first or reports an error. */
  async until(what: string, test: () => boolean): Promise<void> {
    if (!test() && this.exit === null) {
      await new Promise<void>((resolve) => this.waiters.push({ test, resolve }));
    }
    this.checkNoError();
    if (!test()) {
      throw new Error(`writer exited (${JSON.stringify(this.exit)}) before ${what}; ` +
        `stdout: ${this.lines.slice(-5).join(' / ')}; stderr: ${this.stderr.slice(-2000)}`);
    }
  }

  checkNoError(): void {
    const error = this.lines.find((l) => l.startsWith('error '));
    if (error !== undefined) throw new Error(`writer failed: ${error}; stderr: ${this.stderr}`);
  }

  /** SIGKILL (if still running) and wait until the process is gone and stdout drained. */
  async kill(): Promise<Exit> {
    if (this.exit === null) this.child.kill('SIGKILL');
    const exit = await this.exited;
    this.checkNoError();
    return exit;
  }

  /** Wait for the writer to exit by itself. */
  wait(): Promise<Exit> {
    return this.exited;
  }
}
