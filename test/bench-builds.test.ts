/**
 * `npm run bench:builds`, the side-by-side of builds (bench/builds.ts), run as npm runs it (the
 * built dist-bench/bench/builds.js in a child process) on this checkout's own build, twice: its
 * usage errors, and a quick run's medians and runs. No number is judged here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runNode } from './support/child.js';
import { ensureBenchBuilt, ensureBuilt } from './support/dist.js';

let tool = '';
let dist = '';
let dir = '';

beforeAll(() => {
  ensureBuilt();
  tool = path.join(path.dirname(ensureBenchBuilt()), 'builds.js');
  dist = path.resolve(path.dirname(tool), '..', '..', 'dist');
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-bench-builds-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('bench:builds', () => {
  it('--help lists the cases and exits 0', async () => {
    const run = await runNode([tool, '--help'], { cwd: dir });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('send-async-128');
    expect(run.stdout).toContain('push-128');
  });

  it.each([
    [[], 'name at least one build'],
    [['--cases', 'nope', 'DIST'], 'unknown case: nope'],
    [['--rounds', '0', 'DIST'], '--rounds needs an integer >= 1'],
    [['--frobnicate', 'DIST'], 'unknown option --frobnicate'],
  ])('%j is a usage error (exit code 2)', async (args, message) => {
    const run = await runNode([tool, ...args.map((a) => (a === 'DIST' ? dist : a))],
      { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it('refuses a directory that is not a build', async () => {
    const run = await runNode([tool, dir], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('is not a build');
  });

  it('a quick run gives every case a median per build and one run each', async () => {
    const run = await runNode([tool, '--quick', '--json', '--dir', dir, '--cases',
      'send-async-128,pull-128', dist, dist], { cwd: dir });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as {
      rounds: number; medians: Record<string, number[]>; runs: Record<string, number[][]>;
    };
    expect(doc.rounds).toBe(1);
    expect(Object.keys(doc.medians)).toEqual(['send-async-128', 'pull-128']);
    for (const name of ['send-async-128', 'pull-128']) {
      expect(doc.medians[name]).toHaveLength(2);
      for (const m of doc.medians[name]!) expect(m).toBeGreaterThan(0);
      expect(doc.runs[name]!.map((r) => r.length)).toEqual([1, 1]);
    }
    // Each run cleaned up after itself.
    expect(fs.readdirSync(dir)).toEqual([]);
  }, 60_000);
});
