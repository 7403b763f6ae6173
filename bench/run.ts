/**
 * `npm run bench -- <scenario|all> [--quick] [--json FILE] [--chart FILE.svg] [--runs N]
 * [--dir DIR]`
 * Scenarios: append, recovery (the storage engine); produce, consume, e2e (the messaging API);
 * query (lookups by message id and by key). `all` runs them in that order.
 * Runs the scenarios, prints a table (rows, then the ratios to pocketmq) and writes JSON (rows,
 * ratios, skipped peers) and, with `--chart`, an SVG bar chart. Data goes under `--dir`
 * (default ./data).
 */
import fs from 'node:fs';
import os from 'node:os';
import { makeContext, table, type BenchContext, type Row } from './harness.js';
import * as append from './append.js';
import * as recovery from './recovery.js';
import * as messaging from './messaging.js';
import * as query from './query.js';
import { chartSvg } from './chart.js';
import { ratios, ratioTable } from './ratios.js';
import { loadNative } from '../lib/store/io/native.js';

const scenarios: Record<string, (ctx: BenchContext) => Promise<Row[]>> = {
  append: append.run,
  recovery: recovery.run,
  produce: messaging.runProduce,
  consume: messaging.runConsume,
  e2e: messaging.runEndToEnd,
  query: query.run,
};

interface Args {
  names: string[]; quick: boolean; json: string | null; chart: string | null;
  runs: number | null; dir: string;
}

function parse(argv: string[]): Args {
  const names: string[] = [];
  let quick = false;
  let json: string | null = null;
  let chart: string | null = null;
  let runs: number | null = null;
  let dir = './data';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--json') json = argv[++i] ?? null;
    else if (a === '--chart') chart = argv[++i] ?? null;
    else if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--dir') dir = argv[++i] ?? dir;
    else if (a === 'all') names.push(...Object.keys(scenarios));
    else if (a in scenarios) names.push(a);
    else {
      const known = Object.keys(scenarios).join(', ');
      throw new Error(`unknown argument ${a}; scenarios: ${known}, all`);
    }
  }
  if (names.length === 0) names.push(...Object.keys(scenarios));
  return { names, quick, json, chart, runs, dir };
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const ctx = makeContext(args.dir, args.quick, args.runs ?? (args.quick ? 1 : 3));
  fs.mkdirSync(args.dir, { recursive: true });
  const rows: Row[] = [];
  for (const name of args.names) {
    process.stderr.write(`running ${name}${args.quick ? ' (quick)' : ''}, ${ctx.runs} run(s)...\n`);
    rows.push(...await scenarios[name]!(ctx));
  }
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown',
    node: process.version, platform: `${os.platform()} ${os.release()}`,
    // Which I/O backend pocketmq ran on: 'file' here means every pocketmq row is off.
    backend: loadNative().mmap === null ? 'file' : 'mmap' };
  const pairs = ratios(rows);
  const skipped = [...ctx.skipped].map(([contender, reason]) => ({ contender, reason }));
  process.stdout.write(`${table(rows)}\n\n${ratioTable(pairs)}\n`);
  for (const s of skipped) process.stdout.write(`skipped ${s.contender}: ${s.reason}\n`);
  const date = new Date().toISOString();
  const doc = { date, machine, quick: args.quick, runs: ctx.runs, rows, ratios: pairs, skipped };
  if (args.chart !== null) {
    const what = args.quick ? '--quick run (small sizes: numbers not meaningful)'
      : `median of ${ctx.runs} runs`;
    fs.writeFileSync(args.chart, chartSvg(rows, `${date.slice(0, 10)}, ${what}; ` +
      `${machine.cpus} × ${machine.cpu}, Node ${machine.node}, ${machine.platform}`));
  }
  const text = JSON.stringify(doc, null, 2);
  if (args.json !== null) fs.writeFileSync(args.json, `${text}\n`);
  else process.stdout.write(`${text}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
