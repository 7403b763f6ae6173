/**
 * Ratios to pocketmq, pair by pair within one run: each peer row is paired with every pocketmq
 * row of the same scenario, body size, durability class (with its rate, for fixed-rate rows)
 * and appends in flight. Throughput rows compare msgs/s; the fixed-rate e2e rows compare p99
 * latency (every contender keeps the rate, so msgs/s says nothing there).
 * Durability classes: `async` (a settled write survives a process crash: pocketmq ASYNC_FLUSH,
 * lmdb noSync, SQLite WAL NORMAL, LevelDB sync:false), `sync` (it survives power loss:
 * SYNC_FLUSH, lmdb sync, WAL FULL, sync:true), `read` (catch-up and read-back).
 */
import type { Row } from './harness.js';

const CLASSES: Record<string, string> = {
  'ASYNC_FLUSH': 'async', 'noSync': 'async', 'WAL NORMAL': 'async', 'sync:false': 'async',
  'SYNC_FLUSH': 'sync', 'sync': 'sync', 'WAL FULL': 'sync', 'sync:true': 'sync',
  'catch-up': 'read', 'visitMessages': 'read', 'getMessage': 'read', 'getRange': 'read',
};

/**
 * The class of a mode; a fixed-rate mode (`10000/s WAL NORMAL`) keeps its rate, and its pacing
 * when the sends come in timer bursts (`10000/s timer WAL NORMAL`).
 */
export function modeClass(mode: string): string {
  const paced = /^(\d+\/s(?: timer)?) (.+)$/.exec(mode);
  if (paced !== null) return `${paced[1]!} ${CLASSES[paced[2]!] ?? paced[2]!}`;
  return CLASSES[mode] ?? mode;
}

/** Rows compared by p99 latency (paced at a fixed rate, so msgs/s is the rate) or by msgs/s. */
export function metricOf(r: Row): 'msgs/s' | 'p99 µs' {
  return r.scenario === 'e2e' ? 'p99 µs' : 'msgs/s';
}

export function isPocketmq(r: Row): boolean {
  return r.contender.startsWith('pocketmq');
}

export function isLimit(r: Row): boolean {
  return r.contender.startsWith('limit:');
}

export interface Ratio {
  scenario: string;
  bodyBytes: number;
  durability: string;
  inFlight: number;
  peer: string;
  peerMode: string;
  peerMsgsPerSec: number;
  pocketmq: string;
  pocketmqMode: string;
  pocketmqMsgsPerSec: number;
  /** What `pocketmqOverPeer` compares: msgs/s, or p99 latency for the fixed-rate e2e rows. */
  metric: 'msgs/s' | 'p99 µs';
  peerP99Us: number | null;
  pocketmqP99Us: number | null;
  /**
   * Above 1: pocketmq did better than the peer in this run: more messages per second
   * (pocketmq's / the peer's), or for `p99 µs` a lower p99 (the peer's / pocketmq's).
   */
  pocketmqOverPeer: number;
}

/** The key two rows must share to be compared. */
export function pairKey(r: Row): string {
  return `${r.scenario}|${r.bodyBytes}|${modeClass(r.mode)}|${r.inFlight}`;
}

/** pocketmq's row over the peer's, better above 1; null when either lacks the value. */
function ratioOf(p: Row, r: Row): number | null {
  // msgs/s unrounded: a cold row's rate (1 / its seconds) is a few per second.
  const [num, den] = metricOf(r) === 'msgs/s' ? [p.messages / p.seconds, r.messages / r.seconds]
    : [r.p99Us, p.p99Us];
  if (num === null || den === null || !(den > 0)) return null;
  // Three significant digits: recovery ratios can be far below 0.01.
  return Number((num / den).toPrecision(3));
}

/** Each peer row against every pocketmq row with its pair key (e2e has two: push and poll). */
export function ratios(rows: readonly Row[]): Ratio[] {
  const pocket = new Map<string, Row[]>();
  for (const r of rows) {
    if (isPocketmq(r)) pocket.set(pairKey(r), [...pocket.get(pairKey(r)) ?? [], r]);
  }
  const out: Ratio[] = [];
  for (const r of rows) {
    if (isPocketmq(r) || isLimit(r)) continue;
    for (const p of pocket.get(pairKey(r)) ?? []) {
      const over = ratioOf(p, r);
      if (over === null) continue;
      out.push({ scenario: r.scenario, bodyBytes: r.bodyBytes, durability: modeClass(r.mode),
        inFlight: r.inFlight, peer: r.contender, peerMode: r.mode, peerMsgsPerSec: r.msgsPerSec,
        pocketmq: p.contender, pocketmqMode: p.mode, pocketmqMsgsPerSec: p.msgsPerSec,
        metric: metricOf(r), peerP99Us: r.p99Us, pocketmqP99Us: p.p99Us,
        pocketmqOverPeer: over });
    }
  }
  return out;
}

/** The ratios as a table for people. */
export function ratioTable(list: readonly Ratio[]): string {
  const lines = list.map((q) => `| ${q.scenario} | ${q.bodyBytes} B | ${q.durability} | ` +
    `${q.inFlight} | ${q.pocketmq} ${q.pocketmqMode} | ${q.peer} ${q.peerMode} | ${q.metric} | ` +
    `×${q.pocketmqOverPeer} |`);
  return ['| scenario | body | durability | in flight | pocketmq | peer | compared | ' +
    'pocketmq / peer |', '|---|---|---|---|---|---|---|---|', ...lines].join('\n');
}
