/**
 * `--chart FILE.svg`: a hand-written SVG bar chart of one run. One group per pair key
 * (scenario, body, durability class, in flight) that has peers: pocketmq's bar, then each
 * peer's, msgs/s on a log scale; where the run has a matching limit row (the framed-append
 * loop for `async` rows of that body size, bare fdatasync for `sync` rows with 1 in flight)
 * it is drawn as a dashed line across the group.
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

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  if (v >= 1e6) return `${Number((v / 1e6).toFixed(2))}M`;
  if (v >= 1e4) return `${Math.round(v / 1e3)}k`;
  return String(Math.round(v));
}

function limitFor(rows: readonly Row[], r: Row): Row | null {
  const cls = modeClass(r.mode);
  const name = cls === 'async' ? 'limit: framed append'
    : cls === 'sync' && r.inFlight === 1 ? 'limit: fdatasync' : null;
  if (name === null) return null;
  return rows.find((l) => l.contender === name &&
    (name === 'limit: fdatasync' || l.bodyBytes === r.bodyBytes)) ?? null;
}

function groups(rows: readonly Row[]): Group[] {
  const byKey = new Map<string, Group>();
  for (const r of rows) {
    if (!isPocketmq(r) || byKey.has(pairKey(r))) continue;
    const peers = rows.filter((p) => !isPocketmq(p) && !isLimit(p) && pairKey(p) === pairKey(r));
    if (peers.length === 0) continue;
    const size = r.bodyBytes >= 1024 ? `${r.bodyBytes / 1024} KiB` : `${r.bodyBytes} B`;
    byKey.set(pairKey(r), { title: `${r.scenario} · ${size} · ${modeClass(r.mode)} · ` +
      `${r.inFlight} in flight`, bars: [r, ...peers], limit: limitFor(rows, r) });
  }
  return [...byKey.values()];
}

function bar(r: Row, y: number, x: (v: number) => number): string {
  const color = isPocketmq(r) ? '#2b6cb0' : COLORS[r.contender] ?? '#718096';
  const w = Math.max(1, x(r.msgsPerSec) - LABEL_X);
  return `<text x="${LABEL_X - 6}" y="${y + 12}" text-anchor="end">` +
    `${esc(`${r.contender} (${r.mode})`)}</text>` +
    `<rect x="${LABEL_X}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"/>` +
    `<text x="${(LABEL_X + w + 4).toFixed(1)}" y="${y + 12}">${fmt(r.msgsPerSec)}</text>`;
}

/** The chart as SVG text; `subtitle` names the run (date, quick or full, machine). */
export function chartSvg(rows: readonly Row[], subtitle: string): string {
  const list = groups(rows);
  const values = list.flatMap((g) => [...g.bars, ...(g.limit ? [g.limit] : [])])
    .map((r) => r.msgsPerSec).filter((v) => v > 0);
  const lo = Math.floor(Math.log10(Math.min(...values, 1e4)));
  const hi = Math.ceil(Math.log10(Math.max(...values, 1e5)));
  const x = (v: number): number =>
    LABEL_X + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * PLOT_W;
  const parts: string[] = [];
  let y = 64;
  for (const g of list) {
    parts.push(`<text x="10" y="${y + 12}" font-weight="bold">${esc(g.title)}</text>`);
    y += 20;
    const top = y;
    for (const r of g.bars) {
      parts.push(bar(r, y, x));
      y += BAR_H + GAP;
    }
    if (g.limit !== null) {
      const lx = x(g.limit.msgsPerSec).toFixed(1);
      parts.push(`<line x1="${lx}" y1="${top - 4}" x2="${lx}" y2="${y}" stroke="#c53030" ` +
        'stroke-width="2" stroke-dasharray="5,3"/>' +
        `<text x="${lx}" y="${top - 6}" fill="#c53030" text-anchor="middle">` +
        `${esc(g.limit.contender)} ${fmt(g.limit.msgsPerSec)}</text>`);
    }
    y += 14;
  }
  const axis: string[] = [];
  for (let p = lo; p <= hi; p++) {
    const tx = x(10 ** p).toFixed(1);
    axis.push(`<line x1="${tx}" y1="56" x2="${tx}" y2="${y}" stroke="#e2e8f0"/>` +
      `<text x="${tx}" y="${y + 14}" text-anchor="middle">${fmt(10 ** p)}</text>`);
  }
  const height = y + 24;
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
  `<rect width="100%" height="100%" fill="#ffffff"/>`,
  `<text x="10" y="22" font-size="16" font-weight="bold">pocketmq and its peers: messages ` +
    'per second, log scale (longer is faster)</text>',
  `<text x="10" y="40" fill="#4a5568">${esc(subtitle)}</text>`,
  ...axis, ...parts, '</svg>', ''].join('\n');
}
