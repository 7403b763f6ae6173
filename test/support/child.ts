/**
 * Node.js child processes: one run to its end, with its exit code, stdout and stderr (tests of
 * commands and scripts users run: the admin command, the benchmark runner, typedoc), and one
 * read line by line until the test kills it (crash tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ChildRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `node ...args` with `NODE_DEBUG` cleared (plus `env`), in `cwd` (default: this one). */
export function runNode(args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: options.cwd,
      env: { ...process.env, NODE_DEBUG: '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A Node.js child process read line by line, to be killed by the test. */
export interface LineChild {
  readonly process: ChildProcess;
  /** Resolves the signal that ended it (null for a normal exit). */
  readonly closed: Promise<NodeJS.Signals | null>;
  /** It has ended. */
  readonly exited: boolean;
  /** Its stderr so far. */
  readonly stderr: string;
}

/**
 * `node script JSON.stringify(config)`, each whole stdout line given to `onLine` (a last line
 * cut by a kill counts for nothing).
 */
export function spawnLines(script: string, config: object, onLine: (line: string) => void):
  LineChild {
  const child = spawn(process.execPath, [script, JSON.stringify(config)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let partial = '';
  const out = { process: child, exited: false, stderr: '',
    closed: new Promise<NodeJS.Signals | null>((resolve) => {
      child.on('close', (_code, signal) => {
        out.exited = true;
        resolve(signal);
      });
    }) };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) onLine(line);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    out.stderr += chunk;
  });
  return out;
}
