/**
 * `--chart FILE.svg`: a hand-written SVG bar chart of one run, in three panels, each on its own
 * log scale. One group per pair key (scenario, body, durability class, in flight) that has
 * peers: pocketmq's bars, then each peer's.
 * - Throughput (every scenario but e2e and recovery): msgs/s, longer is faster. Where the run
 *   has a matching limit row (the framed-append loop for `async` rows of that body size, bare
 *   fdatasync for `sync` rows with 1 in flight) it is a dashed line across the group.
 * - Latency (e2e, fixed rates): p99 µs as the bar, p50 as a dark tick; shorter is better.
 * - Recovery after kill -9: seconds per GiB of commit log, shorter is better; the read +
 *   checksum floor of the same bytes is the dashed line.
 */
import type { Row } from './harness.js';
import { isLimit, isPocketmq, modeClass, pairKey } from './ratios.js';

const WIDTH = 980;
const LABEL_X = 300;
const PLOT_W = WIDTH - LABEL_X - 110;
const BAR_H = 16;
const GAP = 4;
const COLORS: Record<string, string> = {
  'better-sqlite3': '#dd6b20', 'lmdb': '#2f855a', 'classic-level': '#805ad5',
};

interface Group { title: string; bars: Row[]; limit: Row | null }

/** What a panel draws: its groups, the value of a bar, how to print it. */
interface Panel {
  title: string;
  groups: Group[];
  value: (r: Row) => number | null;
  /** A second, shorter mark inside the bar (the p50 of a latency bar). */
  tick?: (r: Row) => number | null;
  format: (v: number) => string;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  if (v >= 1e6) return `${Number((v / 1e6).toFixed(2))}M`;
  if (v >= 1e4) return `${Math.round(v / 1e3)}k`;
  if (v >= 10) return String(Math.round(v));
  return String(Number(v.toPrecision(2)));
}

function limitFor(rows: readonly Row[], r: Row): Row | null {
  const cls = modeClass(r.mode);
  if (r.scenario === 'recovery') {
    return rows.find((l) => l.contender === 'limit: read + checksum' &&
      l.bodyBytes === r.bodyBytes) ?? null;
  }
  const name = cls === 'async' ? 'limit: framed append'
    : cls === 'sync' && r.inFlight === 1 ? 'limit: fdatasync' : null;
  if (name === null) return null;
  return rows.find((l) => l.contender === name &&
    (name === 'limit: fdatasync' || l.bodyBytes === r.bodyBytes)) ?? null;
}

function size(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`;
}

/** The groups of the rows `pick` selects: every pocketmq row of a key, then its peers. */
function groups(rows: readonly Row[], pick: (r: Row) => boolean): Group[] {
  const byKey = new Map<string, Group>();
  for (const r of rows) {
    if (!pick(r) || !isPocketmq(r) || byKey.has(pairKey(r))) continue;
    const key = pairKey(r);
    const same = rows.filter((p) => pick(p) && !isLimit(p) && pairKey(p) === key);
    const peers = same.filter((p) => !isPocketmq(p));
    if (peers.length === 0) continue;
    const inFlight = r.scenario === 'e2e' || r.scenario === 'recovery' ? ''
      : ` · ${r.inFlight} in flight`;
    byKey.set(key, { title: `${r.scenario} · ${size(r.bodyBytes)} · ${modeClass(r.mode)}` +
      inFlight, bars: [...same.filter(isPocketmq), ...peers], limit: limitFor(rows, r) });
  }
  return [...byKey.values()];
}

function secondsPerGiB(r: Row): number | null {
  const v = r.extra?.secondsPerGiB;
  return typeof v === 'number' ? v : null;
}

function panels(rows: readonly Row[]): Panel[] {
  const special = new Set(['e2e', 'recovery']);
  const list: Panel[] = [
    { title: 'Throughput: messages per second, log scale (longer is faster)',
      groups: groups(rows, (r) => !special.has(r.scenario)), value: (r) => r.msgsPerSec,
      format: fmt },
    { title: 'Producer → consumer latency at a fixed rate: p99 µs (bar), p50 (dark tick), ' +
      'log scale (shorter is better)', groups: groups(rows, (r) => r.scenario === 'e2e'),
    value: (r) => r.p99Us, tick: (r) => r.p50Us, format: (v) => `${fmt(v)} µs` },
    { title: 'Reopen after kill -9: seconds per GiB of commit log, log scale (shorter is better)',
      groups: groups(rows, (r) => r.scenario === 'recovery'), value: secondsPerGiB,
      format: (v) => `${fmt(v)} s` },
  ];
  return list.filter((p) => p.groups.length > 0);
}

function bar(panel: Panel, r: Row, y: number, x: (v: number) => number): string {
  const color = isPocketmq(r) ? '#2b6cb0' : COLORS[r.contender] ?? '#718096';
  const v = panel.value(r) ?? 0;
  const w = Math.max(1, x(v) - LABEL_X);
  const t = panel.tick?.(r) ?? null;
  const tick = t === null ? '' : `<rect x="${LABEL_X}" y="${y + 5}" ` +
    `width="${Math.max(1, x(t) - LABEL_X).toFixed(1)}" height="${BAR_H - 10}" fill="#1a202c"/>`;
  return `<text x="${LABEL_X - 6}" y="${y + 12}" text-anchor="end">` +
    `${esc(`${r.contender} (${r.mode})`)}</text>` +
    `<rect x="${LABEL_X}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"/>` +
    tick + `<text x="${(LABEL_X + w + 4).toFixed(1)}" y="${y + 12}">` +
    `${esc(t === null ? panel.format(v) : `${fmt(t)} / ${panel.format(v)}`)}</text>`;
}

/** One panel from `top`: its SVG parts and where the next panel starts. */
function drawPanel(panel: Panel, top: number): { parts: string[]; bottom: number } {
  const values = panel.groups.flatMap((g) => [...g.bars, ...(g.limit ? [g.limit] : [])])
    .flatMap((r) => [panel.value(r), panel.tick?.(r) ?? null])
    .filter((v): v is number => v !== null && v > 0);
  const lo = Math.floor(Math.log10(Math.min(...values)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values))));
  const x = (v: number): number =>
    LABEL_X + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * PLOT_W;
  const parts = [`<text x="10" y="${top + 14}" font-size="14" font-weight="bold">` +
    `${esc(panel.title)}</text>`];
  let y = top + 30;
  const axisTop = y - 6;
  const marks: string[] = [];
  for (const g of panel.groups) {
    marks.push(`<text x="10" y="${y + 12}" font-weight="bold">${esc(g.title)}</text>`);
    y += 20;
    const groupTop = y;
    for (const r of g.bars) {
      marks.push(bar(panel, r, y, x));
      y += BAR_H + GAP;
    }
    const lv = g.limit === null ? null : panel.value(g.limit);
    if (g.limit !== null && lv !== null) {
      const lx = x(lv).toFixed(1);
      marks.push(`<line x1="${lx}" y1="${groupTop - 4}" x2="${lx}" y2="${y}" ` +
        'stroke="#c53030" stroke-width="2" stroke-dasharray="5,3"/>' +
        `<text x="${lx}" y="${groupTop - 6}" fill="#c53030" text-anchor="middle">` +
        `${esc(g.limit.contender)} ${esc(panel.format(lv))}</text>`);
    }
    y += 14;
  }
  for (let p = lo; p <= hi; p++) {
    const tx = x(10 ** p).toFixed(1);
    parts.push(`<line x1="${tx}" y1="${axisTop}" x2="${tx}" y2="${y}" stroke="#e2e8f0"/>` +
      `<text x="${tx}" y="${y + 14}" text-anchor="middle">${esc(panel.format(10 ** p))}</text>`);
  }
  return { parts: [...parts, ...marks], bottom: y + 34 };
}

/** The chart as SVG text; `subtitle` names the run (date, quick or full, machine). */
export function chartSvg(rows: readonly Row[], subtitle: string): string {
  const parts: string[] = [];
  let y = 56;
  for (const panel of panels(rows)) {
    const drawn = drawPanel(panel, y);
    parts.push(...drawn.parts);
    y = drawn.bottom;
  }
  const height = y;
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
  `<rect width="100%" height="100%" fill="#ffffff"/>`,
  `<text x="10" y="22" font-size="16" font-weight="bold">pocketmq and its peers, ` +
    'with the machine\'s limits (dashed)</text>',
  `<text x="10" y="40" fill="#4a5568">${esc(subtitle)}</text>`,
  ...parts, '</svg>', ''].join('\n');
}
