/**
 * The simulator from the command line:
 *
 *   npm run sim -- --seed 123 --steps 400            one seed
 *   npm run sim -- --seed 1 --seeds 1000 --steps 300 seeds 1..1000
 *   npm run sim -- --seed 123 --steps 57 --verbose   replay a failure, printing each step
 *   npm run sim -- --follower ...                    with a follower (test/sim/follower.ts)
 *
 * PMQ_SIM_SEED / PMQ_SIM_STEPS set the defaults. Exits 1 after the first failing seed (with
 * `--keep-going`, after all of them), printing the line that replays it; 2 on an uncaught
 * exception. `--known-bugs` leaves in what hits known bugs (docs/testing.md; none known now).
 */
import { parseArgs } from 'node:util';
import { runSimulation, type SimReport } from './simulator.js';

function numberOption(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be an integer >= 0`);
  return n;
}

function summary(reports: readonly SimReport[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const r of reports) {
    for (const [k, v] of [...Object.entries(r.counts), ...Object.entries(r.stats)]) {
      total[k] = (total[k] ?? 0) + v;
    }
  }
  return Object.fromEntries(Object.entries(total).sort());
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: {
    seed: { type: 'string' }, steps: { type: 'string' }, seeds: { type: 'string' },
    verbose: { type: 'boolean' }, 'keep-going': { type: 'boolean' },
    'known-bugs': { type: 'boolean' }, follower: { type: 'boolean' },
  } });
  const seed = numberOption(values.seed ?? process.env.PMQ_SIM_SEED, 1, 'seed');
  const steps = numberOption(values.steps ?? process.env.PMQ_SIM_STEPS, 400, 'steps');
  const seeds = numberOption(values.seeds, 1, 'seeds');
  const started = performance.now();
  const reports: SimReport[] = [];
  let failed = 0;
  for (let s = seed; s < seed + seeds; s++) {
    currentSeed = s;
    const report = await runSimulation({ seed: s, steps, verbose: values.verbose === true,
      knownBugs: values['known-bugs'] === true, follower: values.follower === true,
      log: (line) => console.log(line) });
    reports.push(report);
    if (report.failure === null) {
      if (seeds <= 20 || s % 100 === 0) {
        console.log(`seed ${s}: ok (${report.stats.sent} sent, trace ${report.traceHash})`);
      }
      continue;
    }
    failed += 1;
    const f = report.failure;
    console.log(`seed ${s}: FAILED at step ${f.step}: ${f.message}`);
    console.log(`  last steps:\n    ${f.trace.join('\n    ')}`);
    console.log(`  replay: ${f.replay} npm run sim -- --verbose`);
    if (values['keep-going'] !== true) break;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${reports.length} seeds x ${steps} steps in ${seconds} s, ${failed} failed`);
  console.log(JSON.stringify(summary(reports)));
  const first = reports.find((r) => r.failure !== null)?.failure;
  if (first !== undefined && first !== null) console.log(`first failure: ${first.replay}`);
  return failed > 0 ? 1 : 0;
}

let currentSeed = -1;

process.on('uncaughtException', (err) => {
  console.log(`seed ${currentSeed}: uncaught exception (a callback in lib threw): ` +
    `${err.stack ?? String(err)}`);
  process.exit(2);
});

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err);
  process.exit(2);
});
