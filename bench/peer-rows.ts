/**
 * Peer rows of the `produce`, `batch-produce` and `consume` scenarios, measured like pocketmq's
 * own rows in the same run on the same sizes: `produce` = `inFlight` async loops each awaiting
 * its own put (the harness's `drive`); `batch-produce` = 8 loops each awaiting a batch of 32
 * puts; `consume` = catch-up of a backlog loaded in batches, the peer closed and opened again
 * first (as pocketmq's backlog is), read in id order.
 */
import fs from 'node:fs';
import { drive, median, nowNs, row, startClock, type BenchContext, type Row } from './harness.js';
import { loadPeers, type Peer, type PeerMode } from './peers/peer.js';

async function produceOnce(ctx: BenchContext, peer: Peer, mode: PeerMode, bodyBytes: number,
  inFlight: number, count: number): Promise<Row> {
  const dir = ctx.freshDir(`peer-${peer.name}`);
  const queue = await peer.open(dir, mode, inFlight);
  const body = Buffer.alloc(bodyBytes, 0x61);
  const { seconds, lat } = await drive(count, inFlight, () => queue.put(body));
  const check = await queue.count();
  await queue.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'produce', contender: peer.name, bodyBytes, mode: mode.mode, inFlight,
    messages: count, seconds, check, ...lat.summary() });
}

/**
 * Batches of 32 puts, 8 batches in flight, as pocketmq's sendBatch(32) row: each batch's puts
 * are issued together and awaited together, so they share one transaction or `batch()` (the
 * puts of one event-loop turn do, see TurnBatcher; lmdb batches a turn's puts itself).
 */
async function batchOnce(ctx: BenchContext, peer: Peer, bodyBytes: number,
  count: number): Promise<Row> {
  const dir = ctx.freshDir(`peer-${peer.name}`);
  const mode = peer.modes.find((m) => !m.durable) ?? peer.modes[0]!;
  const queue = await peer.open(dir, mode, 256);
  const body = Buffer.alloc(bodyBytes, 0x62);
  const batches = Math.ceil(count / 32);
  const { seconds, lat } = await drive(batches, 8, () =>
    Promise.all(Array.from({ length: 32 }, () => queue.put(body))));
  const check = await queue.count();
  await queue.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return row({ scenario: 'batch-produce', contender: peer.name, bodyBytes, mode: mode.mode,
    inFlight: 8 * 32, messages: batches * 32, seconds, check, ...lat.summary() });
}

async function consumeOnce(ctx: BenchContext, peer: Peer, bodyBytes: number,
  count: number): Promise<Row> {
  const dir = ctx.freshDir(`peer-${peer.name}`);
  const mode = peer.modes.find((m) => !m.durable) ?? peer.modes[0]!;
  const writer = await peer.open(dir, mode, 256);
  await writer.fill(Buffer.alloc(bodyBytes, 0x63), count);
  await writer.close();
  (globalThis as { gc?: () => void }).gc?.();
  const reader = await peer.open(dir, mode, 1);
  const t0 = startClock();
  const { count: read, sum } = await reader.readAll();
  const seconds = Number(nowNs() - t0) / 1e9;
  await reader.close();
  fs.rmSync(dir, { recursive: true, force: true });
  if (read !== count) throw new Error(`${peer.name}: read ${read} of ${count}`);
  return row({ scenario: 'consume', contender: peer.name, bodyBytes, mode: 'catch-up',
    inFlight: 1, messages: read, seconds, check: sum });
}

async function repeat(ctx: BenchContext, make: () => Promise<Row>): Promise<Row> {
  const rows: Row[] = [];
  for (let r = 0; r < ctx.runs; r++) rows.push(await make());
  return median(rows);
}

/** Each loaded peer's produce row in its durable (or its async) mode. */
export async function peerProduceRows(ctx: BenchContext, bodyBytes: number, durable: boolean,
  inFlight: number, count: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const peer of await loadPeers(ctx)) {
    for (const mode of peer.modes.filter((m) => m.durable === durable)) {
      rows.push(await repeat(ctx, () =>
        produceOnce(ctx, peer, mode, bodyBytes, inFlight, count)));
    }
  }
  return rows;
}

/** Each loaded peer's batches of 32 puts (its async mode), as pocketmq's sendBatch(32). */
export async function peerBatchRows(ctx: BenchContext, bodyBytes: number,
  count: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const peer of await loadPeers(ctx)) {
    rows.push(await repeat(ctx, () => batchOnce(ctx, peer, bodyBytes, count)));
  }
  return rows;
}

/** Each loaded peer's catch-up of a backlog of `count` messages. */
export async function peerConsumeRows(ctx: BenchContext, bodyBytes: number,
  count: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const peer of await loadPeers(ctx)) {
    rows.push(await repeat(ctx, () => consumeOnce(ctx, peer, bodyBytes, count)));
  }
  return rows;
}
