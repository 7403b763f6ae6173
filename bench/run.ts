/**
 * The benchmark runner: `npm run bench -- [scenario ...|all] [options]`; `--help` prints the
 * scenarios, options and examples (bench/args.ts). Runs the scenarios, prints an aligned table of
 * the rows, the pocketmq / peer ratios and a verdict per scenario (bench/report.ts); with
 * `--json` the run as JSON (rows, ratios, machine, skipped peers), with `--chart` an SVG bar
 * chart. `--from FILE.json` prints a saved run again, measuring nothing. Data goes under `--dir`
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
import * as cold from './cold.js';
import * as jetstream from './jetstream.js';
import * as delay from './delay.js';
import * as replication from './replication.js';
import * as ipc from './ipc.js';
import { parseArgs, SCENARIOS, usage, UsageError, type Args } from './args.js';
import { chartSvg } from './chart.js';
import { ratios, ratioTable } from './ratios.js';
import { QUICK_NOTE, readableRatios, readableTable, verdicts } from './report.js';
import { loadNative } from '../lib/store/io/native.js';

const scenarios: Record<string, (ctx: BenchContext) => Promise<Row[]>> = {
  append: append.run,
  recovery: recovery.run,
  produce: messaging.runProduce,
  consume: messaging.runConsume,
  e2e: latency.run,
  query: query.run,
  cold: cold.run,
  delay: delay.run,
  replication: replication.run,
  ipc: ipc.run,
  jetstream: jetstream.run,
};
for (const [name] of SCENARIOS) {
  if (!(name in scenarios)) throw new Error(`scenario ${name} has no run function`);
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
    try {
      rows.push(...await scenarios[name]!(ctx));
    } finally {
      // Scenarios that keep a store to the end (delay, replication, jetstream) leave it here.
      ctx.removeDirs();
    }
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

/** Date, run kind, machine and load; `short` leaves the quick run's caveat to QUICK_NOTE. */
function subtitle(doc: RunDoc, short = false): string {
  const { machine: m } = doc;
  const what = doc.quick ? `--quick run${short ? '' : ' (small sizes: numbers not meaningful)'}`
    : doc.runs === 1 ? 'one run' : `median of ${doc.runs} runs`;
  const load = m.loadAvgStart === undefined ? ''
    : `; load average ${m.loadAvgStart[0]} at the start, ${m.loadAvgEnd[0]} at the end`;
  return `${doc.date.slice(0, 10)}, ${what}; ${m.cpus} × ${m.cpu}, Node ${m.node}, ` +
    `${m.platform}${load}`;
}

/** The run for people: machine, the tables, skipped peers, then the verdicts. */
function report(doc: RunDoc, markdown: boolean): string {
  const lines = [doc.quick ? QUICK_NOTE : '', subtitle(doc, true), ''];
  if (markdown) lines.push(table(doc.rows), '', ratioTable(doc.ratios));
  else lines.push(readableTable(doc.rows), '', readableRatios(doc.ratios));
  for (const s of doc.skipped) lines.push(`skipped ${s.contender}: ${s.reason}`);
  lines.push('', ...verdicts(doc.rows, doc.ratios, doc.quick));
  return `${lines.filter((l, i) => i > 0 || l !== '').join('\n')}\n`;
}

async function main(args: Args): Promise<void> {
  // --from: the table and chart of a run written earlier with --json (nothing is measured).
  const doc = args.from !== null ? JSON.parse(fs.readFileSync(args.from, 'utf8')) as RunDoc
    : await runScenarios(args);
  // JSON on stdout: stdout holds only the JSON, the report goes to stderr.
  const out = args.json === '-' ? process.stderr : process.stdout;
  out.write(report(doc, args.markdown));
  if (args.chart !== null) fs.writeFileSync(args.chart, chartSvg(doc.rows, subtitle(doc)));
  if (args.json === null) return;
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  if (args.json === '-') process.stdout.write(text);
  else fs.writeFileSync(args.json, text);
}

function parseOrExit(argv: string[]): Args {
  try {
    return parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n\n${usage()}\n`);
    process.exit(2);
  }
}

const args = parseOrExit(process.argv.slice(2));
if (args.help) {
  process.stdout.write(`${usage()}\n`);
} else {
  main(args).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
