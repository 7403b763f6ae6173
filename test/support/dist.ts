/**
 * Child processes run the compiled store (dist/), the test itself runs lib/ through vitest: both
 * must be the same code. `ensureBuilt` builds dist/ when it is missing or older than a source;
 * `ensureBenchBuilt` does the same for the benchmark runner (dist-bench/).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * Run `command` (a script and its arguments, run by this node) when `entry` is missing or older
 * than a source under `sourceDirs`.
 */
function ensureCompiled(command: readonly string[], entry: string,
  sourceDirs: readonly string[]): void {
  const built = fs.existsSync(entry) ? fs.statSync(entry).mtimeMs : -1;
  const newest = Math.max(...sourceDirs.map((d) => newestSource(path.join(root, d))));
  if (built >= newest) return;
  execFileSync(process.execPath, command, { cwd: root, stdio: 'pipe' });
  // tsc leaves an unchanged output file alone: mark the build as fresh.
  const now = new Date();
  fs.utimesSync(entry, now, now);
}

/** The package as `npm run build` makes it: tsc's output and the bundled entry points. */
export function ensureBuilt(): void {
  ensureCompiled([path.join(root, 'scripts', 'build.mjs')], path.join(root, 'dist', 'index.js'),
    ['lib']);
}

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/** The benchmark runner as `npm run bench` runs it: dist-bench/bench/run.js, built from source. */
export function ensureBenchBuilt(): string {
  const entry = path.join(root, 'dist-bench', 'bench', 'run.js');
  ensureCompiled([tsc, '-p', 'tsconfig.bench.json'], entry, ['lib', 'bench']);
  return entry;
}
