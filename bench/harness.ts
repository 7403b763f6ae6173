/**
 * Benchmark harness: rows, repetitions, medians, the table for people and JSON for machines.
 * Every row names its scenario, contender, body size, durability mode and in-flight count, and
 * carries a `check` value (a count or checksum) proving the work was done.
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
}

export function makeContext(dataDir: string, quick: boolean, runs: number): BenchContext {
  let seq = 0;
  return {
    quick, dataDir, runs, skipped: new Map(),
    freshDir(name: string): string {
      const dir = path.join(dataDir, `${name}-${process.pid}-${seq++}`);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      return dir;
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
 */
let peakRss = 0;
let rssTimer: NodeJS.Timeout | null = null;

export function sampleRss(): void {
  const rss = process.memoryUsage.rss();
  if (rss > peakRss) peakRss = rss;
}

/** The start of a timed section: resets the peak RSS and returns `nowNs()`. */
export function startClock(): bigint {
  peakRss = 0;
  sampleRss();
  if (rssTimer === null) {
    rssTimer = setInterval(sampleRss, 10);
    rssTimer.unref();
  }
  return nowNs();
}

export function row(base: Omit<Row, 'msgsPerSec' | 'mbPerSec' | 'p50Us' | 'p99Us' | 'p999Us' |
  'peakRssMb'> & Partial<Pick<Row, 'p50Us' | 'p99Us' | 'p999Us'>>): Row {
  const msgsPerSec = base.messages / base.seconds;
  sampleRss();
  return {
    p50Us: null, p99Us: null, p999Us: null, peakRssMb: Math.round(peakRss / 2 ** 20), ...base,
    msgsPerSec: Math.round(msgsPerSec),
    mbPerSec: Math.round((msgsPerSec * base.bodyBytes) / 1e6 * 10) / 10,
  };
}

/** Median row (by msgs/s) of repeated runs of the same configuration. */
export function median(rows: Row[]): Row {
  const sorted = [...rows].sort((a, b) => a.msgsPerSec - b.msgsPerSec);
  const mid = sorted[Math.floor(sorted.length / 2)]!;
  return { ...mid, extra: { ...mid.extra, runs: rows.length,
    minMsgsPerSec: sorted[0]!.msgsPerSec, maxMsgsPerSec: sorted.at(-1)!.msgsPerSec } };
}

function fmt(v: number | null): string {
  if (v === null) return '-';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  return String(v);
}

export function table(rows: Row[]): string {
  const head = ['scenario', 'contender', 'body', 'mode', 'inflight', 'msgs/s', 'MB/s', 'p50 µs',
    'p99 µs', 'p999 µs', 'RSS MB', 'check'];
  const lines = rows.map((r) => [r.scenario, r.contender, `${r.bodyBytes} B`, r.mode,
    String(r.inFlight), fmt(r.msgsPerSec), String(r.mbPerSec), fmt(r.p50Us), fmt(r.p99Us),
    fmt(r.p999Us), String(r.peakRssMb), String(r.check)]);
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
