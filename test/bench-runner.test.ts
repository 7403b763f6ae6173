/**
 * The benchmark runner's command line, run as `npm run bench` runs it (the built
 * dist-bench/bench/run.js in a child process): `--help`, usage errors and their exit codes, and
 * the table and verdict it prints for a saved run (`--from`), so no scenario is measured here
 * (`npm test` ends with `bench all --quick`, which runs every one).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Row } from '../bench/harness.js';
import { ratios } from '../bench/ratios.js';
import { runNode, type ChildRun } from './support/child.js';
import { ensureBenchBuilt } from './support/dist.js';

let runner = '';
let dir = '';

beforeAll(() => {
  runner = ensureBenchBuilt();
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-bench-cli-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function bench(args: readonly string[]): Promise<ChildRun> {
  return runNode([runner, ...args], { cwd: dir });
}

const SCENARIOS = ['append', 'recovery', 'produce', 'consume', 'e2e', 'query', 'all'];

describe('bench --help', () => {
  it.each(['--help', '-h'])('%s prints usage, scenarios, flags and examples, and exits 0',
    async (flag) => {
      const run = await bench([flag]);
      expect(run.code).toBe(0);
      expect(run.stderr).toBe('');
      expect(run.stdout).toMatch(/^Usage: npm run bench -- /);
      for (const name of SCENARIOS) expect(run.stdout).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
      for (const option of ['--quick', '--runs N', '--json [FILE]', '--chart FILE.svg',
        '--markdown', '--dir DIR', '--from FILE.json', '-h, --help']) {
        expect(run.stdout).toContain(`  ${option}`);
      }
      expect(run.stdout).toContain('Examples:');
      expect(run.stdout).toContain('npm run bench -- append --quick');
    });
});

describe('bench usage errors', () => {
  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['append', '--quik'], 'unknown option --quik'],
    [['apend'], 'unknown scenario apend'],
    [['append', '--runs', '0'], '--runs takes an integer from 1 to 100'],
    [['append', '--chart'], '--chart needs a value'],
    [['--from', 'x.json', 'append'], '--from prints a saved run: it takes no scenario'],
    [['--from', 'x.json', '--json'],
      '--from measures nothing: --json, --quick and --runs do not apply'],
  ])('%j prints what is wrong and the usage on stderr, and exits 2', async (args, message) => {
    const run = await bench(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.split('\n')[0]).toBe(`bench: ${message}`);
    expect(run.stderr).toContain('Usage: npm run bench -- ');
    // Nothing was measured: no data directory was made.
    expect(fs.existsSync(path.join(dir, 'data'))).toBe(false);
  });
});

function row(contender: string, mode: string, msgsPerSec: number, p99Us: number | null = null):
  Row {
  return { scenario: 'append', contender, bodyBytes: 128, mode, inFlight: 256,
    messages: msgsPerSec, seconds: 1, msgsPerSec, mbPerSec: msgsPerSec * 128 / 1e6,
    p50Us: p99Us === null ? null : p99Us / 4, p99Us, p999Us: null, check: msgsPerSec,
    peakRssMb: 100, rssStartMb: 90 };
}

/** A saved quick run: pocketmq ahead of lmdb ×2 and of SQLite ×1.5 (async), behind in sync. */
function savedRun(): string {
  const rows = [
    row('limit: framed append', 'memory', 3_000_000),
    row('pocketmq', 'ASYNC_FLUSH', 1_200_000, 900),
    row('lmdb', 'noSync', 600_000, 1500),
    row('better-sqlite3', 'WAL NORMAL', 800_000, 1200.4),
    row('pocketmq', 'SYNC_FLUSH', 300_000, 4000),
    row('lmdb', 'sync', 400_000, 3000),
  ];
  const doc = { date: '2026-01-02T03:04:05.000Z', machine: { cpus: 2, cpu: 'test cpu',
    loadAvgStart: [0.5], loadAvgEnd: [0.6], node: 'v20', platform: 'linux', backend: 'mmap' },
  quick: true, runs: 1, rows, ratios: ratios(rows), skipped: [] };
  const file = path.join(dir, 'run.json');
  fs.writeFileSync(file, JSON.stringify(doc));
  return file;
}

describe('bench --from: the report of a saved run', () => {
  it('prints an aligned table, the ratios and a verdict naming the best peer', async () => {
    const run = await bench(['--from', savedRun()]);
    expect(run.code).toBe(0);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^quick run: sizes too small, numbers not meaningful; /);
    const head = lines.find((l) => l.startsWith('scenario '))!;
    expect(head.split(/ {2,}/)).toEqual(['scenario', 'size', 'mode', 'in flight', 'contender',
      'msgs/s', 'MB/s', 'p50 µs', 'p99 µs', 'RSS MB', 'check']);
    const first = lines.indexOf(head);
    const table = lines.slice(first, first + 7);
    // Aligned: every line of the table is as long as its head (the check column is last).
    for (const line of table) expect(line.length).toBe(head.length);
    expect(table[2]).toMatch(/^append +128 B +ASYNC_FLUSH +256 +pocketmq +1\.20M +153\.6 +225\.0 +900\.0 +100 +1200000$/);
    expect(table[4]).toMatch(/ 1,200 /);
    expect(run.stdout).toMatch(/^append +128 B +async +256 +pocketmq ASYNC_FLUSH +lmdb noSync +×2$/m);
    expect(lines.filter((l) => l.startsWith('verdict: '))).toEqual([
      'verdict: pocketmq appended 1.20M msgs/s (128 B, ASYNC_FLUSH, 256 in flight), ×1.5 the ' +
      'best peer (better-sqlite3: 800k) in this run; ahead in 2 of 3 pairs ' +
      '[--quick: not meaningful]']);
    expect(lines.at(-2)).toMatch(/^verdict: /);
  });

  it('--markdown prints the Markdown tables of BENCHMARKS.md instead', async () => {
    const run = await bench(['--from', savedRun(), '--markdown']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^\| scenario +\| contender +\| body +\| mode +\|/m);
    expect(run.stdout).toContain('| append | 128 B | async | 256 | pocketmq ASYNC_FLUSH | ' +
      'lmdb noSync | msgs/s | ×2 |');
    expect(run.stdout).toMatch(/^verdict: pocketmq appended 1\.20M msgs\/s/m);
  });
});
