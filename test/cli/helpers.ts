/**
 * Running the `pocketmq` command as users do: a child process on dist/cli/main.js (built by
 * `ensureBuilt`), its exit code, stdout and stderr; `--json` output parsed. Plus an owner
 * process (test/fixtures/cli-owner.mjs) that holds a store open and sends on request, and a
 * reader that waits for a child's lines without fixed sleeps.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { runNode, type ChildRun } from '../support/child.js';
import { MessageStore } from '../../lib/message-store.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(root, 'dist', 'cli', 'main.js');
const OWNER = path.join(root, 'test', 'fixtures', 'cli-owner.mjs');

export type CliRun = ChildRun;

/** Run `pocketmq ...args` to its end. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  // No POCKETMQ_DIR from the developer's shell: a test that wants one passes it.
  return runNode([CLI, ...args], { env: { POCKETMQ_DIR: undefined, ...env } });
}

/** Run `pocketmq ...args --json`, expect exit code 0 and nothing on stderr; the parsed JSON. */
export async function cliJson<T = Record<string, unknown>>(args: readonly string[]): Promise<T> {
  const run = await runCli([...args, '--json']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** A store in `dir` with small segments, for setting up what the command then reads. */
export function openStore(dir: string): Promise<MessageStore> {
  return MessageStore.open(dir, { commitLogSegmentSize: 4 * 2 ** 20 });
}

/** Lines a child writes to one stream, awaited by predicate. */
export class Lines {
  readonly all: string[] = [];
  private partial = '';
  private waiters: (() => void)[] = [];
  private ended = false;

  constructor(stream: NodeJS.ReadableStream) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      this.partial = parts.pop() ?? '';
      this.all.push(...parts);
      this.wake();
    });
    stream.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** The first line matching `predicate`, waiting for it (fails if the stream ends first). */
  async find(predicate: (line: string) => boolean, what: string, timeoutMs = 15_000):
    Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.all.find(predicate);
      if (hit !== undefined) return hit;
      if (this.ended) throw new Error(`stream ended before ${what}: ${this.all.join(' | ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}: ${this.all.join(' | ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** A child process that owns the store in `dir` (SYNC_FLUSH) until told to close. */
export class Owner {
  readonly out: Lines;
  readonly pid: number;
  private sends = 0;

  private constructor(private readonly child: ChildProcess) {
    this.out = new Lines(child.stdout!);
    this.pid = child.pid!;
  }

  static async start(dir: string, multiProcess = false): Promise<Owner> {
    const child = spawn(process.execPath, [OWNER, JSON.stringify({ dir, multiProcess })],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    const owner = new Owner(child);
    await owner.out.find((l) => l === 'ready', 'the owner to open the store');
    return owner;
  }

  /** Send one message through the owner; its SendResult. */
  async send(message: { topic: string; body: string; tags?: string; keys?: string[] }):
    Promise<{ msgId: string; queueId: number; queueOffset: number }> {
    const n = ++this.sends;
    this.child.stdin!.write(`send ${n} ${JSON.stringify(message)}\n`);
    const line = await this.out.find((l) => l.startsWith(`sent ${n} `), `send ${n}`);
    return JSON.parse(line.slice(`sent ${n} `.length)) as {
      msgId: string; queueId: number; queueOffset: number };
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    await exited;
  }
}
