/**
 * Ratios to pocketmq, pair by pair within one run: each peer row is paired with the first
 * pocketmq row of the same scenario, body size, durability class and appends in flight.
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

export function modeClass(mode: string): string {
  return CLASSES[mode] ?? mode;
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
  /** Above 1: pocketmq did more messages per second than the peer in this run. */
  pocketmqOverPeer: number;
}

/** The key two rows must share to be compared. */
export function pairKey(r: Row): string {
  return `${r.scenario}|${r.bodyBytes}|${modeClass(r.mode)}|${r.inFlight}`;
}

export function ratios(rows: readonly Row[]): Ratio[] {
  const pocket = new Map<string, Row>();
  for (const r of rows) {
    if (isPocketmq(r) && !pocket.has(pairKey(r))) pocket.set(pairKey(r), r);
  }
  const out: Ratio[] = [];
  for (const r of rows) {
    if (isPocketmq(r) || isLimit(r)) continue;
    const p = pocket.get(pairKey(r));
    if (p === undefined || r.msgsPerSec <= 0) continue;
    out.push({ scenario: r.scenario, bodyBytes: r.bodyBytes, durability: modeClass(r.mode),
      inFlight: r.inFlight, peer: r.contender, peerMode: r.mode, peerMsgsPerSec: r.msgsPerSec,
      pocketmq: p.contender, pocketmqMode: p.mode, pocketmqMsgsPerSec: p.msgsPerSec,
      pocketmqOverPeer: Math.round((p.msgsPerSec / r.msgsPerSec) * 100) / 100 });
  }
  return out;
}

/** The ratios as a table for people. */
export function ratioTable(list: readonly Ratio[]): string {
  const lines = list.map((q) => `| ${q.scenario} | ${q.bodyBytes} B | ${q.durability} | ` +
    `${q.inFlight} | ${q.pocketmq} ${q.pocketmqMode} | ${q.peer} ${q.peerMode} | ` +
    `×${q.pocketmqOverPeer} |`);
  return ['| scenario | body | durability | in flight | pocketmq | peer | pocketmq / peer |',
    '|---|---|---|---|---|---|---|', ...lines].join('\n');
}
