/**
 * `npm run build`: the package's dist/.
 *
 * 1. tsc compiles lib/ into dist/: the typings (.d.ts) the package ships, and one .js per source
 *    file (what tests and tools import below the package's entry points).
 * 2. esbuild bundles the library. Loading about a hundred ES modules one by one (resolve, read,
 *    compile each) was most of a short-lived process's start; a bundle is one file to read.
 *    - dist/core.cjs: the whole library (`pocketmq`, `pocketmq/storage`, `pocketmq/internal`) as
 *      one CommonJS bundle, and dist/cli/cli.cjs: the `pocketmq` command. Node loads them through
 *      lib/compile-cache.ts, which keeps a V8 code cache of each, so a process after the first
 *      neither parses nor compiles them again. Both without whitespace (names kept, source
 *      maps back to lib/): every process reads and keeps their text.
 *    - dist/index.js, storage.js and internal.js: small ES modules that load the core and export
 *      their entry point's names from it (one core for all three: one copy of each class).
 *      dist/cli/main.js does the same for the command.
 *    - dist/jetstream/index.js: `pocketmq/jetstream`, an ES module bundle that imports
 *      `pocketmq` (../index.js) for what it shares with it.
 *    - dist/esm/: the four library entry points as plain ES module bundles with shared chunks,
 *      for bundlers (package.json's "module" condition, which Node ignores): a bundler cannot
 *      follow a file that is read and compiled at run time. Code a plain open never runs
 *      (replication, multiProcess's owner socket and client) is loaded there with `import()` and
 *      has chunks of its own.
 *    Packages stay external: the dependencies, the optional native addons (loaded at run time,
 *    never required to be present) and the optional NATS packages.
 * 3. The compile caches of an earlier build (dist/.cache, dist/cli/.cache) are removed.
 *
 * `node scripts/build.mjs` from the repository's root; exits non-zero on a failed step.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'],
  { cwd: root, stdio: 'inherit' });

/** The library's entry points: output name (under dist/, without .js) and source. */
const library = {
  index: 'lib/index.ts',
  storage: 'lib/storage.ts',
  internal: 'lib/internal.ts',
};

const shared = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
};

/** For the CommonJS bundles: `import.meta.url` and `import()` as compile-cache.ts runs them. */
const commonJs = {
  ...shared,
  format: 'cjs',
  define: { 'import.meta.url': '__importMetaUrl' },
  supported: { 'dynamic-import': false },
};

// For bundlers: ES modules with shared chunks under dist/esm/. Their export lists name what
// each entry point's loader exports.
const esm = await build({
  ...shared,
  entryPoints: [...Object.entries(library), ['jetstream/index', 'lib/jetstream/index.ts']]
    .map(([out, source]) => ({ out, in: source })),
  outdir: path.join(dist, 'esm'),
  splitting: true,
  format: 'esm',
  chunkNames: 'chunks/[name]-[hash]',
  metafile: true,
});
removeOthers(path.join(dist, 'esm', 'chunks'), esm.metafile);

/** The names the ES module bundle of entry point `out` exports. */
function exportsOf(out) {
  const key = path.relative(root, path.join(dist, 'esm', `${out}.js`));
  const output = esm.metafile.outputs[key];
  if (output === undefined) throw new Error(`build: no output ${key}`);
  return output.exports;
}

await build({
  ...commonJs,
  stdin: {
    contents: Object.values(library).map((source) => `export * from './${source}';`).join('\n'),
    resolveDir: root,
    sourcefile: 'lib/core.ts',
    loader: 'ts',
  },
  outfile: path.join(dist, 'core.cjs'),
});
fastInterop(path.join(dist, 'core.cjs'));
await minifyWhitespace(path.join(dist, 'core.cjs'));

// The loader itself, one ES module (lib/compile-cache.ts says why).
await build({
  ...shared,
  entryPoints: ['lib/compile-cache.ts'],
  outfile: path.join(dist, 'compile-cache.mjs'),
  format: 'esm',
  sourcemap: false,
});
// The CommonJS loader of earlier builds.
fs.rmSync(path.join(dist, 'compile-cache.cjs'), { force: true });
for (const [out, source] of Object.entries(library)) {
  writeLoader(`${out}.js`, 'core.cjs', source, exportsOf(out));
}

await build({ ...commonJs, entryPoints: ['lib/cli/main.ts'], outfile: path.join(dist, 'cli', 'cli.cjs') });
// The command's hashbang goes to its loader: inside the bundle's function it would not parse.
// Its line stays, empty, so the source map's lines still match.
const cli = path.join(dist, 'cli', 'cli.cjs');
fs.writeFileSync(cli, fs.readFileSync(cli, 'utf8').replace(/^#![^\n]*/, ''));
fastInterop(cli);
await minifyWhitespace(cli);
writeLoader('cli/main.js', 'cli.cjs', 'lib/cli/main.ts', [], '#!/usr/bin/env node\n');

// pocketmq/jetstream for Node: what it imports of `pocketmq` stays an import of ../index.js.
await build({
  ...shared,
  entryPoints: ['lib/jetstream/index.ts'],
  outfile: path.join(dist, 'jetstream', 'index.js'),
  format: 'esm',
  plugins: [{
    name: 'pocketmq-external',
    setup(b) {
      b.onResolve({ filter: /^\.\.\/index\.js$/ }, (args) => {
        if (path.dirname(args.importer) !== path.join(root, 'lib', 'jetstream')) return undefined;
        return { path: '../index.js', external: true };
      });
    },
  }],
});

for (const cache of [path.join(dist, '.cache'), path.join(dist, 'cli', '.cache')]) {
  fs.rmSync(cache, { recursive: true, force: true });
}
// The ES module chunks an earlier build wrote in dist/chunks/ (before dist/esm/).
fs.rmSync(path.join(dist, 'chunks'), { recursive: true, force: true });

/**
 * Writes dist/<file>: an ES module that runs the CommonJS bundle `bundle` (next to it) through
 * the compile cache and exports `names` from it.
 */
function writeLoader(file, bundle, source, names, hashbang = '') {
  const target = path.join(dist, file);
  const bundled = fs.readFileSync(path.join(path.dirname(target), bundle));
  const hash = createHash('sha256').update(bundled).digest('hex');
  const loader = path.relative(path.dirname(target), path.join(dist, 'compile-cache.mjs'));
  const lines = [
    `${hashbang}// ${source} for Node: runs ./${bundle} through the compile cache (npm run build).`,
    `import { loadBundle } from './${loader.split(path.sep).join('/')}';`,
    `const bundle = loadBundle(new URL('./${bundle}', import.meta.url), '${hash}');`,
  ];
  if (names.length > 0) lines.push(`export const { ${names.join(', ')} } = bundle;`);
  else lines.push('void bundle;');
  fs.writeFileSync(target, `${lines.join('\n')}\n`);
  fs.rmSync(`${target}.map`, { force: true });
}

/**
 * esbuild's CommonJS output gives each default import of a module (`import fs from 'node:fs'`,
 * about forty of them) an object with a getter per export of that module, made at load: 2 ms
 * of a process's start. The same interop through the prototype chain costs nothing at load and
 * reads the same values (the bundle's code only reads these objects). The helper esbuild
 * emits is replaced in `file`, on the same line (the source map's lines still match); the
 * build fails if it no longer matches.
 */
function fastInterop(file) {
  const source = fs.readFileSync(file, 'utf8');
  const helper = 'var __toESM = (mod, isNodeMode, target2) => (';
  const count = source.split(helper).length - 1;
  if (count !== 1) throw new Error(`build: esbuild's __toESM helper found ${count} times in ${file}`);
  fs.writeFileSync(file, source.replace(helper,
    'var __toESM = (mod, isNodeMode) => isNodeMode && mod !== null && ' +
    '(typeof mod === "object" || typeof mod === "function") ? ' +
    '__create(mod, { default: { value: mod, enumerable: true } }) : ' +
    '__toESMCopy(mod, isNodeMode); var __toESMCopy = (mod, isNodeMode, target2) => ('));
}

/**
 * Rewrites a CommonJS bundle without its whitespace: a third smaller, and every process reads,
 * decodes and keeps its text (about 3 ms of a short-lived process's start here for 660 KB).
 * Names stay (a stack trace names its functions); the source map follows the bundle's own back
 * to lib/ (esbuild reads the input's map). esbuild writes "use strict" at the top: the sources are
 * ES modules, strict already.
 */
async function minifyWhitespace(file) {
  await build({
    entryPoints: [file], outfile: file, allowOverwrite: true, minifyWhitespace: true,
    platform: 'node', target: 'node20', sourcemap: 'linked', logLevel: 'warning',
  });
}

/** Removes the files of `dir` an earlier build left: names carry a content hash. */
function removeOthers(dir, metafile) {
  const written = new Set(Object.keys(metafile.outputs).map((f) => path.resolve(root, f)));
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (!written.has(file)) fs.rmSync(file);
  }
}
