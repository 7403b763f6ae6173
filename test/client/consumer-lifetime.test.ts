/**
 * What keeps a process alive (SPEC §5): a started push consumer until shutdown/close, a pending
 * `poll` or `for await` until it returns, as a listening server would. Real child processes,
 * whose only pending work is the consumer: each must finish its job and exit 0 by itself, and
 * offsets must be on disk afterwards.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/message-store.js';
import { useTempDirs } from '../support/backends.js';

const tmp = useTempDirs('pmq-lifetime-');
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures',
  'lifetime-child.mjs');

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly lines: string[];
  readonly stderr: string;
}

/** Run the child in `mode`; `onLine` may act on its output (send a signal). */
function run(dir: string, mode: string,
  onLine: (line: string, kill: (s: NodeJS.Signals) => void) => void = () => undefined):
  Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify({ dir, mode })],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let partial = '';
    // A hang is a failure, not a wait: the child is killed and the test fails on its exit.
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const parts = text.split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        onLine(line, (s) => child.kill(s));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, lines, stderr });
    });
  });
}

async function lagOf(dir: string, group: string): Promise<number> {
  const store = await MessageStore.openReadOnly(dir);
  try {
    return (await store.consumerProgress(group)).reduce((n, q) => n + q.lag, 0);
  } finally {
    await store.close();
  }
}

describe('a consumer keeps its process alive', () => {
  it('a pending poll on an empty topic returns [] instead of ending the script', async () => {
    const exit = await run(tmp.make(), 'poll');
    expect(exit.stderr).toBe('');
    expect(exit).toMatchObject({ code: 0, lines: ['ready', 'polled 0'] });
  });

  it('for await on an idle topic waits for the next message', async () => {
    const dir = tmp.make();
    const exit = await run(dir, 'iterate');
    expect(exit.stderr).toBe('');
    expect(exit).toMatchObject({ code: 0, lines: ['ready', 'got hello', 'closed'] });
  });

  it('a started push consumer handles what arrives, and its offsets are written', async () => {
    const dir = tmp.make();
    const exit = await run(dir, 'push');
    expect(exit.stderr).toBe('');
    expect(exit).toMatchObject({ code: 0, lines: ['ready', 'got hello', 'closed'] });
    expect(await lagOf(dir, 'push-g')).toBe(0);
  });

  it('runs until SIGTERM; the graceful-shutdown recipe writes offsets and exits 0', async () => {
    const dir = tmp.make();
    const exit = await run(dir, 'sigterm', (line, kill) => {
      if (line === 'got before') kill('SIGTERM');
    });
    expect(exit.stderr).toBe('');
    expect(exit.code).toBe(0);
    expect(exit.lines).toEqual(expect.arrayContaining(['ready', 'got before', 'closed']));
    expect(await lagOf(dir, 'push-g')).toBe(0);
  });
});
