/**
 * Store owners and openers in other processes and threads (test/fixtures/lock-store.mjs), for
 * the lock tests: each says lines (`ready ...`, `locked ...`, `opened`, `closed`, `error ...`)
 * that a test reads one after another.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const fixture = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures',
  'lock-store.mjs');

export interface PeerConfig {
  readonly dir: string;
  readonly role: 'owner' | 'opener';
  readonly addons: boolean;
}

export interface Peer {
  /** The child's pid; null for a worker thread (it shares ours). */
  readonly pid: number | null;
  /** The next line it says; rejects when it ended first. */
  next(): Promise<string>;
  /** Ask an owner to close its store. */
  close(): void;
  /** SIGKILL a child, terminate a worker; resolves once it is gone. */
  kill(): Promise<void>;
}

class Lines {
  private readonly lines: string[] = [];
  private readonly waiters: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  private ended: Error | null = null;

  push(line: string): void {
    const waiter = this.waiters.shift();
    if (waiter === undefined) this.lines.push(line);
    else waiter.resolve(line);
  }

  end(reason: string): void {
    this.ended = new Error(reason);
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.ended);
  }

  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended !== null) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

export function childPeer(config: PeerConfig): Peer {
  const child: ChildProcess = spawn(process.execPath, [fixture, JSON.stringify(config)],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = new Lines();
  let buffered = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      lines.push(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    lines.end(`child exited (${code ?? signal}): ${stderr}`);
    resolve();
  }));
  return {
    pid: child.pid ?? null,
    next: () => lines.next(),
    close: () => child.stdin!.end(),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
}

export function workerPeer(config: PeerConfig): Peer {
  const worker = new Worker(fixture, { workerData: config });
  const lines = new Lines();
  worker.on('message', (line: string) => lines.push(line));
  worker.on('error', (err) => lines.end(`worker failed: ${err.stack ?? err.message}`));
  const exited = new Promise<void>((resolve) => worker.once('exit', (code) => {
    lines.end(`worker exited (${code})`);
    resolve();
  }));
  return {
    pid: null,
    next: () => lines.next(),
    close: () => worker.postMessage('close'),
    kill: async () => {
      await worker.terminate();
      await exited;
    },
  };
}
