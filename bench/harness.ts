/**
 * Benchmark harness: rows, repetitions, medians, the table for people and JSON for machines.
 * Every row names its scenario, contender, body size, durability mode and in-flight count, and
 * carries a `check` value (a count or checksum) proving the work was done.
 *
 * Memory: each timed section starts with a full GC (where `--expose-gc` allows) and records the
 * process's RSS then (`rssStartMb`) and the highest RSS sampled until the row is made
 * (`peakRssMb`). Rows measured in one process share it, so the peak includes what earlier rows
 * left (heap, mapped pages, native caches); `peakRssMb - rssStartMb` is what the row itself
 * added. Rows measured in a child process of their own (recovery) report that process's peak
 * (Linux VmHWM when its clock stops) and its RSS before the timed part.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Row {
  scenario: string;
  contender: string;
  bodyBytes: number;
  mode: string;
  inFlight: number;
  messages: number;
  seconds: number;
  msgsPerSec: number;
  mbPerSec: number;
  p50Us: number | null;
  p99Us: number | null;
  p999Us: number | null;
  check: number | string;
  /** Highest resident set size of the process seen during the timed section, in MB. */
  peakRssMb: number;
  /** Resident set size at the start of the timed section (after a full GC), in MB. */
  rssStartMb: number;
  extra?: Record<string, number | string>;
}

export interface BenchContext {
  readonly quick: boolean;
  /** Root directory for data; each run makes and removes its own subdirectory. */
  readonly dataDir: string;
  readonly runs: number;
  /** Contenders left out of this run, with the reason (printed and written to the JSON). */
  readonly skipped: Map<string, string>;
  freshDir(name: string): string;
  /** Removes every directory `freshDir` made that is still there (after each scenario). */
  removeDirs(): void;
}

export function makeContext(dataDir: string, quick: boolean, runs: number): BenchContext {
  let seq = 0;
  const made: string[] = [];
  return {
    quick, dataDir, runs, skipped: new Map(),
    freshDir(name: string): string {
      const dir = path.join(dataDir, `${name}-${process.pid}-${seq++}`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      made.push(dir);
      return dir;
    },
    removeDirs(): void {
      for (const dir of made.splice(0)) {
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      }
    },
  };
}

export function percentile(sortedUs: Float64Array | number[], p: number): number | null {
  if (sortedUs.length === 0) return null;
  const i = Math.min(sortedUs.length - 1, Math.floor(p * sortedUs.length));
  return sortedUs[i]!;
}

/** Latencies in microseconds, recorded into a preallocated array. */
export class Latencies {
  private readonly values: Float64Array;
  private n = 0;
  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }
  add(us: number): void {
    if (this.n < this.values.length) this.values[this.n++] = us;
  }
  summary(): { p50Us: number | null; p99Us: number | null; p999Us: number | null } {
    const sorted = this.values.slice(0, this.n).sort();
    return {
      p50Us: round(percentile(sorted, 0.5)), p99Us: round(percentile(sorted, 0.99)),
      p999Us: round(percentile(sorted, 0.999)),
    };
  }
}

function round(v: number | null): number | null {
  return v === null ? null : Math.round(v * 10) / 10;
}

export function nowNs(): bigint {
  return process.hrtime.bigint();
}

/**
 * Peak RSS of the timed section: `startClock()` resets it, a 10 ms timer samples it while the
 * event loop turns, and synchronous loops call `sampleRss()` now and then; `row()` reads it.
 * Latency rows start their clock without the timer (`startClock(false)`): a sample in the timers
 * phase of a turn delays what that turn was to deliver (it took a bare 1 ms `setInterval` +
 * `setImmediate` loop's p99 from 24 to 66-88 µs); their peak is sampled at the start and the end.
 */
let peakRss = 0;
let startRss = 0;
let rssTimer: NodeJS.Timeout | null = null;

export function sampleRss(): void {
  const rss = process.memoryUsage.rss();
  if (rss > peakRss) peakRss = rss;
}

/** A full GC where the process runs with `--expose-gc` (the runner does), else nothing. */
export function fullGc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * The start of a timed section: a full GC, resets the peak RSS and returns `nowNs()`. The RSS is
 * sampled every 10 ms from here on, unless `sampling` is false (until the next start).
 */
export function startClock(sampling = true): bigint {
  fullGc();
  peakRss = 0;
  sampleRss();
  startRss = peakRss;
  if (!sampling && rssTimer !== null) {
    clearInterval(rssTimer);
    rssTimer = null;
  } else if (sampling && rssTimer === null) {
    rssTimer = setInterval(sampleRss, 10);
    rssTimer.unref();
  }
  return nowNs();
}

/** A row; the RSS fields come from the timed section unless given (a child process's). */
export function row(base: Omit<Row, 'msgsPerSec' | 'mbPerSec' | 'p50Us' | 'p99Us' | 'p999Us' |
  'peakRssMb' | 'rssStartMb'> &
  Partial<Pick<Row, 'p50Us' | 'p99Us' | 'p999Us' | 'peakRssMb' | 'rssStartMb'>>): Row {
  const msgsPerSec = base.messages / base.seconds;
  sampleRss();
  return {
    p50Us: null, p99Us: null, p999Us: null, peakRssMb: Math.round(peakRss / 2 ** 20),
    rssStartMb: Math.round(startRss / 2 ** 20), ...base,
    msgsPerSec: Math.round(msgsPerSec),
    mbPerSec: Math.round((msgsPerSec * base.bodyBytes) / 1e6 * 10) / 10,
  };
}

/**
 * Median row of repeated runs of the same configuration: by msgs/s, or with `by: 'p99'` by p99
 * latency (rows paced at a fixed rate, whose msgs/s is the rate). The spread over the runs goes
 * to `extra` (min and max).
 */
export function median(rows: Row[], by: 'msgsPerSec' | 'p99' = 'msgsPerSec'): Row {
  const value = (r: Row): number => (by === 'p99' ? r.p99Us ?? Infinity : r.msgsPerSec);
  const sorted = [...rows].sort((a, b) => value(a) - value(b));
  const mid = sorted[Math.floor(sorted.length / 2)]!;
  const name = by === 'p99' ? 'P99Us' : 'MsgsPerSec';
  return { ...mid, extra: { ...mid.extra, runs: rows.length,
    [`min${name}`]: value(sorted[0]!), [`max${name}`]: value(sorted.at(-1)!) } };
}

function fmt(v: number | null): string {
  if (v === null) return '-';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return String(v);
}

export function table(rows: Row[]): string {
  const head = ['scenario', 'contender', 'body', 'mode', 'inflight', 'msgs/s', 'MB/s', 'p50 µs',
    'p99 µs', 'p999 µs', 'RSS peak MB', 'RSS +MB', 'check'];
  const lines = rows.map((r) => [r.scenario, r.contender, `${r.bodyBytes} B`, r.mode,
    String(r.inFlight), fmt(r.msgsPerSec), String(r.mbPerSec), fmt(r.p50Us), fmt(r.p99Us),
    fmt(r.p999Us), String(r.peakRssMb), String(r.peakRssMb - r.rssStartMb), String(r.check)]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const render = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [render(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...lines.map(render)].join('\n');
}

/** `inFlight` loops, each awaiting its own operation; every 64th one's latency is sampled. */
export async function drive(count: number, inFlight: number,
  put: (i: number) => Promise<unknown>): Promise<{ seconds: number; lat: Latencies }> {
  const lat = new Latencies(Math.ceil(count / 64) + inFlight);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      if ((i & 63) === 0) {
        if ((i & 4095) === 0) sampleRss();
        const t = nowNs();
        await put(i);
        lat.add(Number(nowNs() - t) / 1000);
      } else {
        await put(i);
      }
    }
  };
  const t0 = startClock();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { seconds: Number(nowNs() - t0) / 1e9, lat };
}

/** Bytes allocated on disk under `dir` (blocks, so sparse files count what they hold). */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += dirBytes(p);
    else total += fs.statSync(p).blocks * 512;
  }
  return total;
}
