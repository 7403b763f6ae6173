/**
 * Scenario `recovery`: reopen after kill -9, pocketmq next to the peers on the same messages.
 * For each contender a child process fills a store (recovery-child.ts `write`) and is killed
 * with SIGKILL; a second, fresh child times the reopen and the read of the newest message
 * (`open`) and reports its own peak RSS. The files are still in the OS page cache: this is a
 * process crash, not a machine crash.
 * - pocketmq `kill -9`: the writer never wrote a checkpoint past the start, so the reopen checks
 *   every record's frame and checksum and rebuilds every ConsumeQueue entry: the worst case,
 *   which grows with the log. `kill -9, steady` (full runs only): default options, killed after
 *   the checkpoint caught up; the reopen checks from the checkpoint's last record on.
 * - peers (async mode): their own reopen, SQLite's WAL index rebuilt from the WAL, LevelDB's log
 *   replayed into a table; lmdb has nothing to replay (copy-on-write pages).
 * - `limit: read + checksum`: pocketmq's commit-log bytes read with 1 MiB reads and xxh32 over
 *   each read, in this process: the floor of any recovery that checks every byte.
 * `extra.secondsPerGiB` divides by the GiB of pocketmq's commit log for the same messages
 * (`logBytes`), for every row, so it compares the same data; `diskBytes` is what each
 * contender's own files take on disk.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { checksum32 } from '../lib/store/checksum.js';
import {
  dirBytes, median, nowNs, row, startClock, type BenchContext, type Row,
} from './harness.js';
import { loadPeers } from './peers/peer.js';

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'recovery-child.js');

/** Runs the child, resolving with what it printed; `kill` ends it (SIGKILL) at `done`. */
function runChild(args: string[], kill: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, ...args],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (kill && /done (\d+)\n/.test(out)) proc.kill('SIGKILL');
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (kill ? signal === 'SIGKILL' && out.startsWith('done') : code === 0) resolve(out);
      else reject(new Error(`recovery child ${args.join(' ')} exited ${code} ${signal}`));
    });
  });
}

interface Opened { seconds: number; check: number; rssStartMb: number; peakRssMb: number;
  checkedBytes?: number; endOffset?: number }

/** Fill with `count` messages in one child, kill it, reopen in another. */
async function crashAndReopen(dir: string, contender: string, count: number, bodyBytes: number,
  steady: boolean): Promise<{ end: number; opened: Opened; diskBytes: number }> {
  const written = await runChild(['write', contender, dir, String(count), String(bodyBytes),
    steady ? 'steady' : ''], true);
  const end = Number(/done (\d+)/.exec(written)![1]);
  await sleep(200);
  const diskBytes = dirBytes(dir);
  const opened = JSON.parse(await runChild(['open', contender, dir, String(count)], false)) as
    Opened;
  if (opened.check !== count) throw new Error(`${contender}: ${opened.check} of ${count} found`);
  return { end, opened, diskBytes };
}

/** The commit log's first `bytes` read in 1 MiB reads, xxh32 over each: seconds taken. */
async function readAndChecksum(dir: string, bytes: number): Promise<{ seconds: number;
  check: number }> {
  const logDir = path.join(dir, 'commitlog');
  const files = fs.readdirSync(logDir).sort();
  const chunk = Buffer.allocUnsafe(2 ** 20);
  let left = bytes;
  let check = 0;
  const t0 = startClock();
  for (const name of files) {
    const handle = await fs.promises.open(path.join(logDir, name), 'r');
    try {
      while (left > 0) {
        const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, left));
        if (bytesRead === 0) break;
        check = (check + checksum32(chunk, 0, bytesRead)) >>> 0;
        left -= bytesRead;
      }
    } finally {
      await handle.close();
    }
  }
  if (left > 0) throw new Error(`commit log shorter than ${bytes} bytes`);
  return { seconds: Number(nowNs() - t0) / 1e9, check };
}

const GIB = 2 ** 30;

function perGiB(seconds: number, logBytes: number): number {
  return Math.round((seconds / (logBytes / GIB)) * 1000) / 1000;
}

/** pocketmq's rows (and the limit's) of one run; `logBytes` is its commit log's length. */
async function pocketOnce(ctx: BenchContext, bodyBytes: number, count: number,
  steady: boolean): Promise<{ rows: Row[]; logBytes: number }> {
  const dir = ctx.freshDir('recovery');
  try {
    const { end, opened, diskBytes } = await crashAndReopen(dir, 'pocketmq', count, bodyBytes,
      steady);
    if (opened.endOffset !== end) throw new Error(`recovered to ${opened.endOffset}, wrote ${end}`);
    const logBytes = end;
    const checked = opened.checkedBytes!;
    const rows = [row({ scenario: 'recovery', contender: 'pocketmq', bodyBytes,
      mode: steady ? 'kill -9, steady' : 'kill -9', inFlight: 1, messages: count,
      seconds: opened.seconds, check: opened.check, peakRssMb: opened.peakRssMb,
      rssStartMb: opened.rssStartMb, extra: { logBytes, checkedBytes: checked, diskBytes,
        secondsPerGiB: perGiB(opened.seconds, logBytes),
        checkedGBPerSec: Math.round((checked / opened.seconds / 1e9) * 100) / 100 } })];
    if (!steady) {
      const limit = await readAndChecksum(dir, logBytes);
      rows.push(row({ scenario: 'recovery', contender: 'limit: read + checksum', bodyBytes,
        mode: 'kill -9', inFlight: 1, messages: count, seconds: limit.seconds,
        check: limit.check, extra: { logBytes, secondsPerGiB: perGiB(limit.seconds, logBytes) } }));
    }
    return { rows, logBytes };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function peerOnce(ctx: BenchContext, peer: string, bodyBytes: number, count: number,
  logBytes: number): Promise<Row> {
  const dir = ctx.freshDir(`recovery-${peer}`);
  try {
    const { opened, diskBytes } = await crashAndReopen(dir, peer, count, bodyBytes, false);
    return row({ scenario: 'recovery', contender: peer, bodyBytes, mode: 'kill -9', inFlight: 1,
      messages: count, seconds: opened.seconds, check: opened.check,
      peakRssMb: opened.peakRssMb, rssStartMb: opened.rssStartMb,
      extra: { logBytes, diskBytes, secondsPerGiB: perGiB(opened.seconds, logBytes) } });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Medians of `runs` runs, row by row (each run gives its rows in the same order). */
function medians(runs: Row[][]): Row[] {
  return runs[0]!.map((_, k) => median(runs.map((rows) => rows[k]!)));
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const out: Row[] = [];
  const peers = (await loadPeers(ctx)).map((p) => p.name);
  // --quick: 128 B only (the same code; each run starts 8 processes).
  for (const bodyBytes of ctx.quick ? [128] : [128, 1024]) {
    // 808 MB of commit log at 128 B, 1.1 GB at 1 KiB.
    const count = Math.round((ctx.quick ? 10_000 : 1_000_000) * (bodyBytes > 512 ? 1 : 4));
    const runs: Row[][] = [];
    for (let i = 0; i < ctx.runs; i++) {
      const { rows, logBytes } = await pocketOnce(ctx, bodyBytes, count, false);
      if (!ctx.quick) rows.push(...(await pocketOnce(ctx, bodyBytes, count, true)).rows);
      for (const peer of peers) rows.push(await peerOnce(ctx, peer, bodyBytes, count, logBytes));
      runs.push(rows);
    }
    out.push(...medians(runs));
  }
  return out;
}
