/**
 * A Node.js child process run to its end: its exit code, stdout and stderr (tests of commands
 * and scripts users run: the admin command, the benchmark runner, typedoc).
 */
import { spawn } from 'node:child_process';

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
