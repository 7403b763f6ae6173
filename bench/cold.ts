/**
 * Scenario `cold`: what a short-lived process pays (a CLI run, an app's start), each contender
 * in its durable mode (pocketmq SYNC_FLUSH, better-sqlite3 WAL FULL, lmdb sync), every time in
 * a FRESH child process (cold-child.ts), timed inside the child from before the library's
 * import to after its close (pocketmq from the package's build, dist/: `npm run build` first):
 * - `cold-open`: open an existing small store (8 messages of 128 B, written and closed by an
 *   earlier child), send one message durably, close;
 * - `cold-create`: the same on an empty directory (the store's first open);
 * - `cold-open-64q` (pocketmq only): `cold-open` on a store whose topic has 64 queues, one
 *   message in each (what an open costs with many queues);
 * - the footprint: bytes the store takes on disk after the 8 messages (`extra.diskBytes`,
 *   allocated blocks as `du` counts them, directories included; `extra.apparentBytes`, the
 *   files' lengths).
 * Rows carry the parts in `extra` (importMs, openMs, sendMs, closeMs, and cpuMs: the child's
 * CPU time over the same span). msgs/s is 1 / seconds, so the ratios compare total times.
 * Contenders take turns run by run; the median row is by total time.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, row, type BenchContext, type Row } from './harness.js';
import { loadPeers } from './peers/peer.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'cold-child.js');
/** What the child imports: the package's main entry as `npm run build` makes it. */
const packageEntry = path.join(here, '..', '..', 'dist', 'index.js');
const BODY_BYTES = 128;
const MESSAGES = 8;
/** The queues (and messages, one each) of the `cold-open-64q` store. */
const MANY_QUEUES = 64;
const MODES: Record<string, string> = {
  pocketmq: 'SYNC_FLUSH', 'better-sqlite3': 'WAL FULL', lmdb: 'sync',
};

function runChild(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, ...args],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new Error(`cold child ${args.join(' ')} exited ${code} ${signal}`));
    });
  });
}

/** Allocated bytes (st_blocks * 512, directories too, as du) and apparent bytes under `dir`. */
export function footprint(dir: string): { diskBytes: number; apparentBytes: number } {
  const st = fs.statSync(dir);
  let diskBytes = st.blocks * 512;
  let apparentBytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = footprint(p);
      diskBytes += sub.diskBytes;
      apparentBytes += sub.apparentBytes;
    } else {
      const s = fs.statSync(p);
      diskBytes += s.blocks * 512;
      apparentBytes += s.size;
    }
  }
  return { diskBytes, apparentBytes };
}

interface Timed {
  importMs: number; openMs: number; sendMs: number; closeMs: number; totalMs: number;
  cpuMs: number; check: number;
}

async function timedRun(contender: string, dir: string, scenario: string,
  extra: Record<string, number>): Promise<Row> {
  const t = JSON.parse(await runChild(['run', contender, dir, String(BODY_BYTES)])) as Timed;
  return row({ scenario, contender, bodyBytes: BODY_BYTES, mode: MODES[contender]!, inFlight: 1,
    messages: 1, seconds: t.totalMs / 1000, check: t.check, peakRssMb: 0, rssStartMb: 0,
    extra: { importMs: t.importMs, openMs: t.openMs, sendMs: t.sendMs, closeMs: t.closeMs,
      cpuMs: t.cpuMs, ...extra } });
}

/** pocketmq's `cold-open-64q` row of one run. */
async function manyQueues(ctx: BenchContext): Promise<Row> {
  const dir = ctx.freshDir('cold-pocketmq-64q');
  try {
    await runChild(['fill', 'pocketmq', dir, String(MANY_QUEUES), String(BODY_BYTES),
      String(MANY_QUEUES)]);
    const open = await timedRun('pocketmq', dir, 'cold-open-64q', footprint(dir));
    if (open.check !== MANY_QUEUES + 1) throw new Error(`pocketmq: ${open.check} messages`);
    return open;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One contender's rows of one run. */
async function once(ctx: BenchContext, contender: string): Promise<Row[]> {
  const existing = ctx.freshDir(`cold-${contender}`);
  const empty = ctx.freshDir(`cold-${contender}-new`);
  try {
    await runChild(['fill', contender, existing, String(MESSAGES), String(BODY_BYTES)]);
    const filled = footprint(existing);
    const open = await timedRun(contender, existing, 'cold-open', filled);
    if (open.check !== MESSAGES + 1) throw new Error(`${contender}: ${open.check} messages`);
    const create = await timedRun(contender, empty, 'cold-create', {});
    if (create.check !== 1) throw new Error(`${contender}: ${create.check} messages, not 1`);
    // What the new store takes with its one message.
    create.extra = { ...create.extra, ...footprint(empty) };
    return contender === 'pocketmq' ? [open, create, await manyQueues(ctx)] : [open, create];
  } finally {
    fs.rmSync(existing, { recursive: true, force: true });
    fs.rmSync(empty, { recursive: true, force: true });
  }
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  if (!fs.existsSync(packageEntry)) {
    throw new Error(`cold: ${packageEntry} is missing; run \`npm run build\` first`);
  }
  const contenders = ['pocketmq', ...(await loadPeers(ctx)).map((p) => p.name)
    .filter((name) => name in MODES)];
  const byKey = new Map<string, Row[]>();
  for (let i = 0; i < ctx.runs; i++) {
    // Each run starts with the next contender, so a noisy minute falls on all of them.
    const order = contenders.map((_, k) => contenders[(k + i) % contenders.length]!);
    for (const contender of order) {
      for (const r of await once(ctx, contender)) {
        const key = `${r.scenario}|${contender}`;
        byKey.set(key, [...byKey.get(key) ?? [], r]);
      }
    }
  }
  const out: Row[] = [];
  for (const scenario of ['cold-open', 'cold-create', 'cold-open-64q']) {
    for (const contender of contenders) {
      const rows = byKey.get(`${scenario}|${contender}`);
      if (rows !== undefined) out.push(median(rows));
    }
  }
  return out;
}
