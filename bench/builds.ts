/**
 * `npm run bench:builds -- [options] DIST DIST...`: the same send and catch-up cases on two or
 * more builds of pocketmq, side by side, to judge a change by (a build before it against one
 * after). Each run is a fresh process (builds-child.ts); the builds take turns, and the order
 * they run in rotates from round to round (a fixed order biases the later ones on a machine
 * whose disk is still writing back the earlier one's data). Prints each case's median msgs/s
 * per build and its ratio to the first build.
 *
 * A build of an older commit: `git worktree add ../before <commit>`, then `npm ci && npm run
 * build` there; its dist/ is a DIST.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CASES } from './builds-child.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'builds-child.js');

const USAGE = `Usage: npm run bench:builds -- [options] DIST DIST...

Runs each case on every build (a dist/ directory), each run in its own process, the builds'
order rotating round by round; prints the median msgs/s and the ratio to the first DIST.

Cases: ${Object.keys(CASES).join(', ')}

Options:
  --rounds N     runs of each case per build (default 7; 1 with --quick)
  --cases a,b    only these cases (default: all)
  --quick        a tenth of the messages: checks that it runs (numbers not meaningful)
  --json         the medians and every run as JSON on stdout
  --dir DIR      where the stores go (default ./data)
  -h, --help     print this help

Exit codes: 0 done, 1 a run failed, 2 a bad command line.`;

interface Options {
  rounds: number;
  cases: string[];
  quick: boolean;
  json: boolean;
  dir: string;
  dists: string[];
}

class UsageError extends Error {}

function parse(argv: readonly string[]): Options | null {
  const o: Options = { rounds: -1, cases: Object.keys(CASES), quick: false, json: false,
    dir: './data', dists: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('-')) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help') return null;
    else if (a === '--quick') o.quick = true;
    else if (a === '--json') o.json = true;
    else if (a === '--dir') o.dir = value();
    else if (a === '--rounds') {
      o.rounds = Number(value());
      if (!Number.isInteger(o.rounds) || o.rounds < 1) {
        throw new UsageError('--rounds needs an integer >= 1');
      }
    } else if (a === '--cases') {
      o.cases = value().split(',');
      const unknown = o.cases.filter((c) => !(c in CASES));
      if (unknown.length > 0) throw new UsageError(`unknown case: ${unknown.join(', ')}`);
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else o.dists.push(a);
  }
  if (o.dists.length < 1) throw new UsageError('name at least one build (a dist/ directory)');
  for (const d of o.dists) {
    if (!fs.existsSync(path.join(d, 'index.js'))) {
      throw new UsageError(`${d} is not a build: it has no index.js`);
    }
  }
  if (o.rounds < 0) o.rounds = o.quick ? 1 : 7;
  return o;
}

function runOnce(dist: string, name: string, o: Options): Promise<number> {
  const args = [child, dist, name, o.dir, ...(o.quick ? ['--quick'] : [])];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (code !== 0) {
        reject(new Error(`${name} on ${dist} exited ${code} ${signal}`));
        return;
      }
      resolve((JSON.parse(out) as { rate: number }).rate);
    });
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<number> {
  let o: Options | null;
  try {
    o = parse(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (o === null) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  fs.mkdirSync(o.dir, { recursive: true });
  const runs: Record<string, number[][]> = {};
  for (const name of o.cases) {
    const rates: number[][] = o.dists.map(() => []);
    for (let r = 0; r < o.rounds; r++) {
      for (let k = 0; k < o.dists.length; k++) {
        const b = (r + k) % o.dists.length;
        rates[b]!.push(await runOnce(o.dists[b]!, name, o));
      }
    }
    runs[name] = rates;
  }
  const medians = Object.fromEntries(Object.entries(runs).map(([name, rates]) =>
    [name, rates.map(median)]));
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ dists: o.dists, rounds: o.rounds, quick: o.quick,
      medians, runs }, null, 2)}\n`);
    return 0;
  }
  const head = ['case', ...o.dists.map((d, i) => `${String.fromCharCode(65 + i)} msgs/s`),
    ...o.dists.slice(1).map((_, i) => `${String.fromCharCode(66 + i)} / A`)];
  const lines = Object.entries(medians).map(([name, m]) => [name,
    ...m.map((v) => v.toLocaleString('en-US')), ...m.slice(1).map((v) => (v / m[0]!).toFixed(2))]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const out = [head, ...lines].map((l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!)
    : c.padStart(widths[i]!))).join('  '));
  const legend = o.dists.map((d, i) => `${String.fromCharCode(65 + i)} = ${d}`);
  process.stdout.write(`${[...legend, `median of ${o.rounds} run(s) each, order rotating` +
    (o.quick ? ' [--quick: not meaningful]' : ''), '', ...out].join('\n')}\n`);
  return 0;
}

process.exitCode = await main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  return 1;
});
