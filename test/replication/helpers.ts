/**
 * Helpers for replication tests: a child process running one store of a pair
 * (test/fixtures/replication-node.mjs), commands to it and the lines it prints, and a logger
 * that keeps what an in-process store says.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../lib/store/options.js';
import type { MessageStoreOptions } from '../../lib/message-store.js';

const NODE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures',
  'replication-node.mjs');

/** Small segments so runs roll segments; a test that needs more sets its own. */
export const SEGMENT = 256 * 1024;

export class StoreProcess {
  readonly process: ChildProcess;
  readonly lines: string[] = [];
  private partial = '';
  private readonly waiters = new Set<() => void>();
  stderr = '';
  exited = false;

  constructor(readonly dir: string, options: MessageStoreOptions) {
    this.process = spawn(process.execPath, [NODE, JSON.stringify({ dir, options })],
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_DEBUG: '' } });
    this.process.stdout!.setEncoding('utf8').on('data', (s: string) => {
      const parts = (this.partial + s).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      for (const wake of [...this.waiters]) wake();
    });
    this.process.stderr!.setEncoding('utf8').on('data', (s: string) => { this.stderr += s; });
    this.process.on('exit', () => {
      this.exited = true;
      for (const wake of [...this.waiters]) wake();
    });
  }

  command(line: string): void {
    this.process.stdin!.write(`${line}\n`);
  }

  /** Resolves with the first line (from index `from`) that matches; fails after `timeoutMs`. */
  async waitFor(match: (line: string) => boolean, what: string, timeoutMs = 20_000,
    from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found !== undefined) return found;
      if (this.exited || Date.now() > deadline) {
        throw new Error(`${this.exited ? 'exited' : 'timed out'} waiting for ${what}; last ` +
          `lines: ${this.lines.slice(-8).join(' / ')} ${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(100, Math.max(1, deadline - Date.now())));
        this.waiters.add(done);
      });
    }
  }

  /** `ready <port> <role>`: the port (null when none). */
  async ready(): Promise<{ port: number | null; role: string }> {
    const line = await this.waitFor((l) => l.startsWith('ready ') || l.startsWith('error '),
      'ready');
    if (line.startsWith('error ')) throw new Error(line);
    const [, port, role] = line.split(' ');
    return { port: port === 'none' ? null : Number(port), role: role! };
  }

  /** Ask and wait for the answer line starting with `word`. */
  async ask(command: string, word: string, timeoutMs = 20_000): Promise<string> {
    const from = this.lines.length;
    this.command(command);
    const line = await this.waitFor((l) => l.startsWith(`${word} `) || l.startsWith('error '),
      command, timeoutMs, from);
    if (line.startsWith('error ')) throw new Error(line);
    return line.slice(word.length + 1);
  }

  /** `send n topic`: the results, one per message. */
  async send(n: number, topic: string): Promise<SentLine[]> {
    const from = this.lines.length;
    await this.ask(`send ${n} ${topic}`, 'sent-done', 60_000);
    return this.lines.slice(from).filter((l) => l.startsWith('sent ')).map((l) => {
      const [, status, msgId, queueId, queueOffset, commitLogOffset] = l.split(' ');
      return { status: status!, msgId: msgId!, queueId: Number(queueId),
        queueOffset: Number(queueOffset), commitLogOffset: Number(commitLogOffset) };
    });
  }

  async offset(): Promise<number> {
    return Number(await this.ask('offset', 'offset'));
  }

  logged(text: string): boolean {
    return this.lines.some((l) => l.startsWith('log ') && l.includes(text));
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.exited) return Promise.resolve();
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    this.process.kill(signal);
    return exited;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    await this.ask('close', 'closed', 30_000).catch(() => undefined);
    await this.kill();
  }
}

export interface SentLine {
  readonly status: string;
  readonly msgId: string;
  readonly queueId: number;
  readonly queueOffset: number;
  readonly commitLogOffset: number;
}

/** A logger that keeps every line (tests assert what was said). */
export function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (message: string): void => { lines.push(`${level} ${message}`); };
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'),
    error: keep('error') };
}
