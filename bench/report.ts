/**
 * What the runner prints for people: the rows and the pocketmq / peer ratios as aligned tables,
 * and a verdict per scenario computed from them (which pocketmq row, against which peer).
 * `--markdown` prints `table` and `ratioTable` instead (the Markdown of BENCHMARKS.md).
 */
import type { Row } from './harness.js';
import { isPocketmq, type Ratio } from './ratios.js';

/** `1.21M`, `460k`, `5499`. */
export function fmtRate(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return String(Math.round(v));
}

/** Microseconds: `167.1`, `5,135`; `-` when the row has none. */
export function fmtUs(v: number | null): string {
  if (v === null) return '-';
  return v < 1000 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
}

/** `128 B`, `1 KiB`, `16 KiB`; sizes that are not whole KiB stay in bytes (`1096 B`). */
export function fmtSize(bytes: number): string {
  return bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

interface Column { head: string; right: boolean; cell: (r: Row) => string }

/** Rows of cells under their heads, padded to one width per column, two spaces apart. */
function align(heads: readonly string[], right: readonly boolean[],
  lines: readonly string[][]): string {
  const widths = heads.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cells: readonly string[]): string => cells
    .map((c, i) => (right[i] === true ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
    .join('  ').trimEnd();
  return [render(heads), ...lines.map(render)].join('\n');
}

/** The rows as an aligned table; latency columns only when some row measured latency. */
export function readableTable(rows: readonly Row[]): string {
  const hasLatency = rows.some((r) => r.p50Us !== null || r.p99Us !== null);
  const columns: Column[] = [
    { head: 'scenario', right: false, cell: (r) => r.scenario },
    { head: 'size', right: true, cell: (r) => fmtSize(r.bodyBytes) },
    { head: 'mode', right: false, cell: (r) => r.mode },
    { head: 'in flight', right: true, cell: (r) => String(r.inFlight) },
    { head: 'contender', right: false, cell: (r) => r.contender },
    { head: 'msgs/s', right: true, cell: (r) => fmtRate(r.msgsPerSec) },
    { head: 'MB/s', right: true, cell: (r) => r.mbPerSec.toFixed(1) },
    ...hasLatency ? [
      { head: 'p50 µs', right: true, cell: (r: Row) => fmtUs(r.p50Us) },
      { head: 'p99 µs', right: true, cell: (r: Row) => fmtUs(r.p99Us) },
    ] : [],
    { head: 'RSS MB', right: true, cell: (r) => String(r.peakRssMb) },
    { head: 'check', right: true, cell: (r) => String(r.check) },
  ];
  return align(columns.map((c) => c.head), columns.map((c) => c.right),
    rows.map((r) => columns.map((c) => c.cell(r))));
}

/** The ratios as an aligned table, with a line saying how to read them. */
export function readableRatios(list: readonly Ratio[]): string {
  if (list.length === 0) return 'no peer row to compare with pocketmq in this run';
  const heads = ['scenario', 'size', 'durability', 'in flight', 'pocketmq', 'peer',
    'pocketmq / peer'];
  const right = [false, true, false, true, false, false, true];
  const lines = list.map((q) => [q.scenario, fmtSize(q.bodyBytes), q.durability,
    String(q.inFlight), `${q.pocketmq} ${q.pocketmqMode}`, `${q.peer} ${q.peerMode}`,
    `×${q.pocketmqOverPeer}`]);
  return 'pocketmq / peer, pair by pair (above 1: pocketmq ahead; e2e compares p99 latency)\n' +
    align(heads, right, lines);
}

/** Scenarios with a verdict, in this order; the verb says what the rate counts. */
const VERBS: readonly (readonly [scenario: string, verb: string])[] = [
  ['append', 'appended'], ['recovery', 'recovered'], ['produce', 'sent'],
  ['consume', 'consumed'], ['e2e', ''], ['query', 'looked up'],
  ['ipc-process', 'sent'], ['ipc-threads', 'sent'],
];

function samePair(q: Ratio, r: Row): boolean {
  return q.pocketmq === r.contender && q.pocketmqMode === r.mode &&
    q.bodyBytes === r.bodyBytes && q.inFlight === r.inFlight && q.scenario === r.scenario;
}

/**
 * One scenario's verdict: pocketmq's fastest row that has a peer to compare (for e2e, the
 * highest rate, then the shortest p99) against the strongest peer of its pair.
 */
function verdictOf(scenario: string, verb: string, rows: readonly Row[],
  list: readonly Ratio[]): string | null {
  const pairs = list.filter((q) => q.scenario === scenario);
  const mine = rows.filter((r) => r.scenario === scenario && isPocketmq(r));
  if (mine.length === 0) return null;
  const compared = mine.filter((r) => pairs.some((q) => samePair(q, r)));
  if (compared.length === 0) return `${scenario}: no peer ran next to pocketmq in this run`;
  // Fixed-rate rows (e2e) keep their rate only roughly: compare the rate they were set to.
  const rate = (r: Row): number => Number(/^(\d+)\/s /.exec(r.mode)?.[1] ?? r.msgsPerSec);
  const p99 = (r: Row): number => r.p99Us ?? Infinity;
  const best = compared.reduce((a, b) => (rate(b) > rate(a) ||
    (rate(b) === rate(a) && p99(b) < p99(a)) ? b : a));
  const against = pairs.filter((q) => samePair(q, best))
    .reduce((a, b) => (b.pocketmqOverPeer < a.pocketmqOverPeer ? b : a));
  const ahead = pairs.filter((q) => q.pocketmqOverPeer > 1).length;
  const tally = `ahead in ${ahead} of ${pairs.length} pairs`;
  const size = fmtSize(best.bodyBytes);
  if (scenario === 'e2e') {
    return `${best.contender} at ${best.mode} (${size}): p99 ${fmtUs(best.p99Us)} µs against ` +
      `${fmtUs(against.peerP99Us)} µs for the best peer (${against.peer}) in this run; ${tally}`;
  }
  // 'pocketmq send' -> 'with send'; the storage engine's rows are plain 'pocketmq'.
  const api = best.contender.replace(/^pocketmq ?/, '');
  return `pocketmq ${verb} ${fmtRate(best.msgsPerSec)} msgs/s${api === '' ? '' : ` with ${api}`} ` +
    `(${size}, ${best.mode}, ${best.inFlight} in flight), ×${against.pocketmqOverPeer} the best ` +
    `peer (${against.peer}: ${fmtRate(against.peerMsgsPerSec)}) in this run; ${tally}`;
}

/** Milliseconds of a cold row, with one decimal. */
function ms(r: Row): string {
  return (r.seconds * 1000).toFixed(1);
}

/** KiB on disk of a cold row's store. */
function kib(r: Row): string {
  return `${Math.round(Number(r.extra?.diskBytes ?? 0) / 1024)} KiB`;
}

/**
 * The cold scenario's verdict: pocketmq's total time for an open of a small store (and of an
 * empty directory) with one durable send and a close, against the fastest peer, the store's
 * size on disk after its 8 messages, and the same open of a store of 64 queues.
 */
function coldVerdict(rows: readonly Row[]): string | null {
  const of = (scenario: string): { mine?: Row; best?: Row } => {
    const all = rows.filter((r) => r.scenario === scenario);
    const peers = all.filter((r) => !isPocketmq(r));
    return { mine: all.find(isPocketmq),
      best: peers.length === 0 ? undefined
        : peers.reduce((a, b) => (b.seconds < a.seconds ? b : a)) };
  };
  const open = of('cold-open');
  const create = of('cold-create');
  const many = of('cold-open-64q').mine;
  if (open.mine === undefined || create.mine === undefined) return null;
  const x = open.mine.extra ?? {};
  const parts = `import ${x.importMs}, open ${x.openMs}, send ${x.sendMs}, close ${x.closeMs}`;
  const vs = (mine: Row, best: Row | undefined): string => (best === undefined ? ''
    : ` against ${ms(best)} ms for the best peer (${best.contender}, ` +
      `×${(best.seconds / mine.seconds).toPrecision(3)})`);
  return `cold: pocketmq opened a store of 8 messages, sent one ${open.mine.mode} message and ` +
    `closed in ${ms(open.mine)} ms (${parts}; CPU ${x.cpuMs} ms)${vs(open.mine, open.best)}; ` +
    `an empty directory: ${ms(create.mine)} ms${vs(create.mine, create.best)}; ` +
    `${kib(open.mine)} on disk after 8 messages` +
    (open.best === undefined ? '' : ` (${open.best.contender}: ${kib(open.best)})`) +
    (many === undefined ? '' : `; a store of 64 queues: ${ms(many)} ms (open ` +
      `${many.extra?.openMs} ms)`);
}

/** A verdict line per scenario the run measured (one line for a run of one scenario). */
export function verdicts(rows: readonly Row[], list: readonly Ratio[], quick: boolean): string[] {
  const note = quick ? ' [--quick: not meaningful]' : '';
  return [...VERBS.map(([scenario, verb]) => verdictOf(scenario, verb, rows, list)),
    coldVerdict(rows)]
    .filter((line): line is string => line !== null)
    .map((line) => `verdict: ${line}${note}`);
}

/** The line a quick run prints first, so nobody quotes its numbers. */
export const QUICK_NOTE = 'quick run: sizes too small, numbers not meaningful; it only checks ' +
  'that the benchmarks run (drop --quick to measure)';
