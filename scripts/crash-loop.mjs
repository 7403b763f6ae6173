#!/usr/bin/env node
/**
 * `npm run crash-loop -- --iterations N [--seed S]`: kill -9 real writer processes over and over.
 * Each iteration runs test/crash.test.ts (nine kills of a writer child at seeded moments, SYNC
 * and ASYNC, single records and batches, on the mmap and plain-file backends, each followed by
 * recovery and checks of every acknowledged record, queue, index and the next append) with its
 * own PMQ_CRASH_SEED, so a failure names the seed that replays it:
 *   PMQ_CRASH_SEED=<seed> npx vitest run test/crash.test.ts
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parse(argv) {
  const out = { iterations: 10, seed: Math.floor(Math.random() * 2 ** 31) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--iterations') out.iterations = Number(argv[++i]);
    else if (a === '--seed') out.seed = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}; use --iterations N [--seed S]`);
  }
  if (!Number.isInteger(out.iterations) || out.iterations < 1) {
    throw new Error('--iterations must be a positive integer');
  }
  return out;
}

const { iterations, seed } = parse(process.argv.slice(2));
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const failed = [];
const started = Date.now();
for (let i = 0; i < iterations; i++) {
  const s = (seed + i) % 2 ** 31;
  const run = spawnSync(process.execPath, [vitest, 'run', 'test/crash.test.ts'], {
    cwd: root, env: { ...process.env, PMQ_CRASH_SEED: String(s) }, encoding: 'utf8',
  });
  const ok = run.status === 0;
  if (!ok) failed.push(s);
  process.stdout.write(`iteration ${i + 1}/${iterations} seed ${s}: ${ok ? 'ok' : 'FAILED'}\n`);
  if (!ok) process.stdout.write(`${run.stdout}\n${run.stderr}\n`);
}
const seconds = Math.round((Date.now() - started) / 1000);
process.stdout.write(`${iterations} iterations (${iterations * 9} kills) in ${seconds} s, ` +
  `${failed.length} failed${failed.length > 0 ? `: seeds ${failed.join(', ')}` : ''}\n`);
process.exit(failed.length > 0 ? 1 : 0);
