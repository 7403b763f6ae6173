/**
 * `npm run build`: the package's dist/.
 *
 * 1. tsc compiles lib/ into dist/: the typings (.d.ts) the package ships, and one .js per source
 *    file (what tests and tools import below the package's entry points).
 * 2. esbuild replaces the entry points with bundles: dist/index.js (`pocketmq`), storage.js
 *    (`pocketmq/storage`), internal.js (`pocketmq/internal`), jetstream/index.js
 *    (`pocketmq/jetstream`) and cli/main.js (the `pocketmq` command). Loading about a hundred
 *    ES modules one by one (resolve, read, compile each) was most of a short-lived process's
 *    start; a bundle is one file to read. The entry points share their code through chunks
 *    (dist/chunks/), so an application that imports two of them gets one copy of each class.
 *    Code a plain open never runs (replication, multiProcess's owner socket and client) is
 *    loaded with `import()` where it is first needed: esbuild gives it chunks of its own, read
 *    only then, and a short-lived process does not pay to compile it.
 *    Packages stay external: the dependencies, the optional native addons (loaded at run time,
 *    never required to be present) and the optional NATS packages.
 *
 * `node scripts/build.mjs` from the repository's root; exits non-zero on a failed step.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');

/** Output name (under dist/, without .js) and source of each bundled entry point. */
const entryPoints = {
  index: 'lib/index.ts',
  storage: 'lib/storage.ts',
  internal: 'lib/internal.ts',
  'jetstream/index': 'lib/jetstream/index.ts',
  'cli/main': 'lib/cli/main.ts',
};

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'],
  { cwd: root, stdio: 'inherit' });

const result = await build({
  absWorkingDir: root,
  entryPoints: Object.entries(entryPoints).map(([out, source]) => ({ out, in: source })),
  outdir: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  logLevel: 'warning',
  metafile: true,
});

// Chunks of an earlier build: their names carry a content hash, so this one did not overwrite
// them. Removed after the new ones are written (a process importing dist/ meanwhile still
// finds every file its entry point names).
const written = new Set(Object.keys(result.metafile.outputs).map((f) => path.resolve(root, f)));
const chunks = path.join(dist, 'chunks');
for (const name of fs.readdirSync(chunks)) {
  const file = path.join(chunks, name);
  if (!written.has(file)) fs.rmSync(file);
}
