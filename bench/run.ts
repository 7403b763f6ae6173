/**
 * `npm run bench -- <scenario|all> [--quick] [--json FILE] [--chart FILE.svg] [--runs N]
 * [--dir DIR]`, or `npm run bench -- --from FILE.json [--chart FILE.svg]` to print the table
 * and draw the chart of a run saved with `--json` (measuring nothing).
 * Scenarios: append, recovery (the storage engine, recovery with peers); produce, consume (the
 * messaging API, with peers); e2e (producer -> consumer latency at fixed rates, with peers);
 * query (lookups by message id and by key, with peers). `all` runs them in that order.
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
import * as latency from './latency.js';
import * as query from './query.js';
import { chartSvg } from './chart.js';
import { ratios, ratioTable } from './ratios.js';
import { loadNative } from '../lib/store/io/native.js';

const scenarios: Record<string, (ctx: BenchContext) => Promise<Row[]>> = {
  append: append.run,
  recovery: recovery.run,
  produce: messaging.runProduce,
  consume: messaging.runConsume,
  e2e: latency.run,
  query: query.run,
};

interface Args {
  names: string[]; quick: boolean; json: string | null; chart: string | null;
  runs: number | null; dir: string; from: string | null;
}

function parse(argv: string[]): Args {
  const names: string[] = [];
  let quick = false;
  let json: string | null = null;
  let chart: string | null = null;
  let runs: number | null = null;
  let dir = './data';
  let from: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--json') json = argv[++i] ?? null;
    else if (a === '--chart') chart = argv[++i] ?? null;
    else if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--dir') dir = argv[++i] ?? dir;
    else if (a === '--from') from = argv[++i] ?? null;
    else if (a === 'all') names.push(...Object.keys(scenarios));
    else if (a in scenarios) names.push(a);
    else {
      const known = Object.keys(scenarios).join(', ');
      throw new Error(`unknown argument ${a}; scenarios: ${known}, all`);
    }
  }
  if (names.length === 0) names.push(...Object.keys(scenarios));
  return { names, quick, json, chart, runs, dir, from };
}

/** What a run found: the JSON document (`--json`), also what `--from` reads back. */
interface RunDoc {
  date: string;
  machine: { cpus: number; cpu: string; loadAvgStart: number[]; loadAvgEnd: number[];
    node: string; platform: string; backend: string };
  quick: boolean;
  runs: number;
  rows: Row[];
  ratios: ReturnType<typeof ratios>;
  skipped: { contender: string; reason: string }[];
}

function loadAvg(): number[] {
  return os.loadavg().map((v) => Math.round(v * 100) / 100);
}

async function runScenarios(args: Args): Promise<RunDoc> {
  const ctx = makeContext(args.dir, args.quick, args.runs ?? (args.quick ? 1 : 3));
  fs.mkdirSync(args.dir, { recursive: true });
  const loadAvgStart = loadAvg();
  const rows: Row[] = [];
  for (const name of args.names) {
    process.stderr.write(`running ${name}${args.quick ? ' (quick)' : ''}, ${ctx.runs} run(s)...\n`);
    rows.push(...await scenarios[name]!(ctx));
  }
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown',
    // The machine may be shared: its load at the start and the end of the run.
    loadAvgStart, loadAvgEnd: loadAvg(),
    node: process.version, platform: `${os.platform()} ${os.release()}`,
    // Which I/O backend pocketmq ran on: 'file' here means every pocketmq row is off.
    backend: loadNative().mmap === null ? 'file' : 'mmap' };
  const skipped = [...ctx.skipped].map(([contender, reason]) => ({ contender, reason }));
  return { date: new Date().toISOString(), machine, quick: args.quick, runs: ctx.runs, rows,
    ratios: ratios(rows), skipped };
}

function subtitle(doc: RunDoc): string {
  const { machine: m } = doc;
  const what = doc.quick ? '--quick run (small sizes: numbers not meaningful)'
    : doc.runs === 1 ? 'one run' : `median of ${doc.runs} runs`;
  const load = m.loadAvgStart === undefined ? ''
    : `; load average ${m.loadAvgStart[0]} at the start, ${m.loadAvgEnd[0]} at the end`;
  return `${doc.date.slice(0, 10)}, ${what}; ${m.cpus} × ${m.cpu}, Node ${m.node}, ` +
    `${m.platform}${load}`;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  // --from: the table and chart of a run written earlier with --json (nothing is measured).
  const doc = args.from !== null ? JSON.parse(fs.readFileSync(args.from, 'utf8')) as RunDoc
    : await runScenarios(args);
  process.stdout.write(`${table(doc.rows)}\n\n${ratioTable(doc.ratios)}\n`);
  for (const s of doc.skipped) process.stdout.write(`skipped ${s.contender}: ${s.reason}\n`);
  if (args.chart !== null) fs.writeFileSync(args.chart, chartSvg(doc.rows, subtitle(doc)));
  if (args.from !== null) return;
  const text = JSON.stringify(doc, null, 2);
  if (args.json !== null) fs.writeFileSync(args.json, `${text}\n`);
  else process.stdout.write(`${text}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
