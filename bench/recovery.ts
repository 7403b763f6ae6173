/**
 * Scenario `recovery`: a child fills a store and is killed with SIGKILL; the parent times the
 * reopen, which checks every record's frame and checksum and rebuilds ConsumeQueues (the child
 * never wrote a checkpoint past the start). Reports commit-log GB checked per second.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StoreEngine } from '../lib/index.js';
import { median, nowNs, row, startClock, type BenchContext, type Row } from './harness.js';

const writer = path.join(path.dirname(fileURLToPath(import.meta.url)), 'recovery-writer.js');

function fillAndKill(dir: string, count: number, bodyBytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, dir, String(count), String(bodyBytes)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /done (\d+)/.exec(out);
      if (m) {
        child.kill('SIGKILL');
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer exited ${code} ${signal}`));
    });
  });
}

async function once(ctx: BenchContext, bodyBytes: number, count: number): Promise<Row> {
  const dir = ctx.freshDir('recovery');
  const end = await fillAndKill(dir, count, bodyBytes);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = startClock();
  const store = await StoreEngine.open(dir);
  const seconds = Number(nowNs() - t0) / 1e9;
  const report = store.recovery!;
  const found = store.getMaxOffsetInQueue('recover', 0) * 4;
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
  if (report.endOffset !== end) throw new Error(`recovered ${report.endOffset}, wrote ${end}`);
  const gbPerSec = report.checkedBytes / seconds / 1e9;
  return row({ scenario: 'recovery', contender: 'pocketmq', bodyBytes, mode: 'kill -9',
    inFlight: 1, messages: report.records, seconds, check: found,
    extra: { checkedBytes: report.checkedBytes, gbPerSec: Math.round(gbPerSec * 100) / 100 } });
}

export async function run(ctx: BenchContext): Promise<Row[]> {
  const out: Row[] = [];
  for (const bodyBytes of [128, 1024]) {
    const count = Math.round((ctx.quick ? 20_000 : 1_000_000) * (bodyBytes > 512 ? 1 : 4));
    const rows: Row[] = [];
    for (let i = 0; i < ctx.runs; i++) rows.push(await once(ctx, bodyBytes, count));
    out.push(median(rows));
  }
  return out;
}
