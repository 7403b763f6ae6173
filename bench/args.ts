/**
 * The benchmark runner's command line: what it accepts, the usage text `--help` prints, and the
 * usage errors (exit code 2) for anything else.
 */

/** Scenario names in the order `all` runs them, each with one line of what it measures. */
export const SCENARIOS: readonly (readonly [name: string, what: string])[] = [
  ['append', 'storage engine appends (async and sync flush) and read-back, next to lmdb'],
  ['recovery', 'reopen after kill -9, seconds per GiB of commit log, next to the peers'],
  ['produce', 'send and sendBatch through the messaging API, next to the peers'],
  ['consume', 'catch-up of a backlog with pull and push consumers, next to the peers'],
  ['e2e', 'producer -> consumer latency at fixed rates (p50/p99/p999), next to the peers'],
  ['query', 'lookups by message id and by key, next to the peers'],
  ['cold', 'a fresh process: import, open, one durable send, close; disk use, next to peers'],
  ['ipc', 'sends from a client process and 1, 2, 4 worker threads; SQLite, lmdb alike'],
  ['delay', 'deliverAt over an hour (lateness, memory) and the cost of a retry round trip'],
  ['replication', 'SYNC_MASTER sends with a follower process next to SYNC_FLUSH; follower lag'],
  ['jetstream', 'the API on a 3-node NATS JetStream cluster, next to the embedded store'],
];

export interface Args {
  names: string[];
  quick: boolean;
  /** `--json`: null = no JSON; '-' = JSON to stdout; else the file to write. */
  json: string | null;
  chart: string | null;
  runs: number | null;
  dir: string;
  from: string | null;
  markdown: boolean;
  help: boolean;
}

/** A command line the runner does not accept: usage on stderr, exit code 2. */
export class UsageError extends Error {}

export function usage(): string {
  const width = Math.max(...SCENARIOS.map(([name]) => name.length));
  const list = SCENARIOS.map(([name, what]) => `  ${name.padEnd(width)}  ${what}`);
  return [
    'Usage: npm run bench -- [scenario ...|all] [options]',
    '       npm run bench -- --from FILE.json [--chart FILE.svg] [--markdown]',
    '',
    'Measures pocketmq next to better-sqlite3, lmdb and classic-level (and the machine\'s own',
    'limits) in the same run, prints a table and a verdict. No scenario: all of them.',
    '',
    'Scenarios:',
    ...list,
    `  ${'all'.padEnd(width)}  every scenario above, in that order`,
    '',
    'Options:',
    '  --quick            small sizes: checks that the benchmarks run (numbers not meaningful)',
    '  --runs N           repeat each configuration N times, report the median (default 3,',
    '                     1 with --quick)',
    '  --json [FILE]      write the run as JSON to FILE; without FILE, JSON alone on stdout',
    '                     (the table then goes to stderr)',
    '  --chart FILE.svg   draw a bar chart of the run',
    '  --markdown         print the tables as Markdown (as in BENCHMARKS.md)',
    '  --dir DIR          where the data goes (default ./data); each run cleans up after itself',
    '  --from FILE.json   print the table and verdict of a run saved with --json, measure nothing',
    '  -h, --help         print this help',
    '',
    'Examples:',
    '  npm run bench -- append --quick            # the smoke test: a few seconds',
    '  npm run bench -- append                    # the main job: medians of 3 runs',
    '  npm run bench -- all --json results.json --chart docs/benchmarks.svg',
    '  npm run bench -- e2e --json | jq \'.ratios\'',
    '  npm run bench -- --from results.json --markdown',
    '',
    'Exit codes: 0 done, 1 a benchmark failed, 2 a bad command line.',
  ].join('\n');
}

const SCENARIO_NAMES = new Set(SCENARIOS.map(([name]) => name));

/** The value after a flag; a missing one (or another flag) is a usage error. */
function valueOf(argv: readonly string[], i: number, flag: string): string {
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('-')) throw new UsageError(`${flag} needs a value`);
  return v;
}

/** `--json`'s optional file: the next argument unless it is a flag or a scenario name. */
function jsonTarget(argv: readonly string[], i: number): string | null {
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('-') || v === 'all' || SCENARIO_NAMES.has(v)) return null;
  return v;
}

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = { names: [], quick: false, json: null, chart: null, runs: null,
    dir: './data', from: null, markdown: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') args.help = true;
    else if (a === '--quick') args.quick = true;
    else if (a === '--markdown') args.markdown = true;
    else if (a === '--json') {
      const file = jsonTarget(argv, i);
      args.json = file ?? '-';
      if (file !== null) i++;
    } else if (a === '--chart') args.chart = valueOf(argv, i++, a);
    else if (a === '--dir') args.dir = valueOf(argv, i++, a);
    else if (a === '--from') args.from = valueOf(argv, i++, a);
    else if (a === '--runs') {
      const n = Number(valueOf(argv, i++, a));
      if (!Number.isInteger(n) || n < 1 || n > 100) {
        throw new UsageError('--runs takes an integer from 1 to 100');
      }
      args.runs = n;
    } else if (a === 'all') args.names.push(...SCENARIO_NAMES);
    else if (SCENARIO_NAMES.has(a)) args.names.push(a);
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else throw new UsageError(`unknown scenario ${a}`);
  }
  if (args.from !== null && args.names.length > 0) {
    throw new UsageError('--from prints a saved run: it takes no scenario');
  }
  if (args.from !== null && (args.json !== null || args.quick || args.runs !== null)) {
    throw new UsageError('--from measures nothing: --json, --quick and --runs do not apply');
  }
  if (args.names.length === 0) args.names.push(...SCENARIO_NAMES);
  args.names = [...new Set(args.names)];
  return args;
}
