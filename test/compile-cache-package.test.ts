/**
 * The package's entry points as Node loads them, through the compile cache, in fresh processes:
 * the first process writes the cache and later ones use it (library and command), the entry
 * points share one copy of the library, concurrent first runs, a cache that cannot be written,
 * and a bundler, which takes the ES module build instead.
 */
import fs from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { runNode } from './support/child.js';
import { useTempDirs } from './support/backends.js';
import { ensureBuilt } from './support/dist.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tmp = useTempDirs('pmq-ccpkg-');

beforeAll(() => ensureBuilt());

/** An app whose node_modules holds this package; returns its directory. */
function app(): string {
  const dir = tmp.make();
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'pocketmq'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "name": "app", "private": true }\n');
  return dir;
}

/** Opens a store, sends, reads back, and checks the entry points share their classes. */
const PROGRAM = `
import { MessageStore, CommitLog } from 'pocketmq';
import * as storage from 'pocketmq/storage';
import { storeInternals, StoreEngine } from 'pocketmq/internal';
const store = await MessageStore.open(new URL('./data', import.meta.url).pathname);
const sent = await store.createProducer({ group: 'g' }).send({ topic: 't', body: 'cached' });
const found = await store.viewMessage(sent.msgId);
const shared = storage.CommitLog === CommitLog &&
  storeInternals(store).engine instanceof StoreEngine;
await store.close();
console.log(JSON.stringify({ body: found.body.toString(), shared }));
`;

async function run(dir: string, env: NodeJS.ProcessEnv, script = 'main.mjs'):
  Promise<{ out: unknown; stderr: string }> {
  const child = await runNode([script], { cwd: dir, env });
  expect(child.stderr.includes('Error'), child.stderr).toBe(false);
  expect(child.code, child.stderr).toBe(0);
  return { out: JSON.parse(child.stdout.trim().split('\n').pop()!) as unknown,
    stderr: child.stderr };
}

function cacheFiles(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

describe('the package through the compile cache', () => {
  it('writes the cache in the first process and uses it in the next; one library throughout',
    async () => {
      const dir = app();
      const cache = path.join(dir, 'cache');
      fs.writeFileSync(path.join(dir, 'main.mjs'), PROGRAM);
      const env = { POCKETMQ_COMPILE_CACHE: cache, NODE_DEBUG: 'pocketmq' };
      const first = await run(dir, env);
      expect(first.out).toEqual({ body: 'cached', shared: true });
      expect(first.stderr).toMatch(/compile cache: .*core\.cjs.* written/);
      // Written after the store opened: a full cache.
      expect(cacheFiles(cache)).toEqual([expect.stringMatching(/^core\.cjs-.*[^l]\.cache$/)]);
      const second = await run(dir, env);
      expect(second.out).toEqual({ body: 'cached', shared: true });
      expect(second.stderr).toMatch(/compile cache: .*core\.cjs.* used/);
      expect(second.stderr).not.toMatch(/written|rejected/);
    });

  it('replaces a cache written before any store opened once a process opens one, and that ' +
    'one once a process sends', async () => {
    const dir = app();
    const cache = path.join(dir, 'cache');
    fs.writeFileSync(path.join(dir, 'main.mjs'), PROGRAM);
    fs.writeFileSync(path.join(dir, 'import.mjs'), "import { MessageStore } from 'pocketmq';\n" +
      'console.log(JSON.stringify(typeof MessageStore));\n');
    fs.writeFileSync(path.join(dir, 'open.mjs'), "import { MessageStore } from 'pocketmq';\n" +
      "const store = await MessageStore.open(new URL('./data', import.meta.url).pathname);\n" +
      "await store.close();\nconsole.log(JSON.stringify('closed'));\n");
    const env = { POCKETMQ_COMPILE_CACHE: cache, NODE_DEBUG: 'pocketmq' };
    const imported = await run(dir, env, 'import.mjs');
    expect(imported.out).toBe('function');
    expect(cacheFiles(cache)).toEqual([expect.stringMatching(/\.partial\.cache$/)]);
    const onlyOpened = await run(dir, env, 'open.mjs');
    expect(onlyOpened.out).toBe('closed');
    expect(onlyOpened.stderr).toMatch(/compile cache: .*\.partial\.cache used/);
    expect(cacheFiles(cache)).toEqual([expect.stringMatching(/\.opened\.cache$/)]);
    const opened = await run(dir, env);
    expect(opened.stderr).toMatch(/compile cache: .*\.opened\.cache used/);
    expect(opened.stderr).toMatch(/compile cache: .*[^ld]\.cache written/);
    expect(cacheFiles(cache)).toEqual([expect.stringMatching(/^core\.cjs-.*[^ld]\.cache$/)]);
    const again = await run(dir, env);
    expect(again.stderr).toMatch(/compile cache: .*[^ld]\.cache used/);
    expect(again.stderr).not.toMatch(/written/);
  });

  it('does the same for the pocketmq command', async () => {
    const dir = app();
    const cache = path.join(dir, 'cache');
    const cli = path.join(root, 'dist', 'cli', 'main.js');
    const env = { POCKETMQ_COMPILE_CACHE: cache, NODE_DEBUG: 'pocketmq' };
    const args = [cli, 'topics', '--dir', path.join(dir, 'data'), '--json'];
    fs.writeFileSync(path.join(dir, 'main.mjs'), PROGRAM);
    await run(dir, { POCKETMQ_COMPILE_CACHE: 'off' });
    const first = await runNode(args, { cwd: dir, env });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/compile cache: .*cli\.cjs.* written/);
    const second = await runNode(args, { cwd: dir, env });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/compile cache: .*cli\.cjs.* used/);
    expect(second.stdout).toBe(first.stdout);
    expect(JSON.parse(second.stdout))
      .toEqual({ topics: [expect.objectContaining({ topic: 't' })] });
  });

  it('lets processes that start together share one cache file', async () => {
    const dir = app();
    const cache = path.join(dir, 'cache');
    for (let i = 0; i < 4; i++) {
      fs.writeFileSync(path.join(dir, `main-${i}.mjs`),
        PROGRAM.replace("'./data'", `'./data-${i}'`));
    }
    const env = { POCKETMQ_COMPILE_CACHE: cache };
    const runs = await Promise.all([0, 1, 2, 3].map((i) => run(dir, env, `main-${i}.mjs`)));
    for (const r of runs) expect(r.out).toEqual({ body: 'cached', shared: true });
    expect(cacheFiles(cache)).toEqual([expect.stringMatching(/^core\.cjs-.*\.cache$/)]);
    const after = await run(dir, { ...env, NODE_DEBUG: 'pocketmq' }, 'main-0.mjs');
    expect(after.stderr).toMatch(/compile cache: .*used/);
  });

  it('runs quietly where the cache cannot be written', async () => {
    const dir = app();
    fs.writeFileSync(path.join(dir, 'main.mjs'), PROGRAM);
    fs.writeFileSync(path.join(dir, 'file'), 'not a directory');
    const result = await run(dir, { POCKETMQ_COMPILE_CACHE: path.join(dir, 'file', 'cache') });
    expect(result.out).toEqual({ body: 'cached', shared: true });
    expect(result.stderr).toBe('');
  });

  it("keeps the bundles' source maps true to lib/ (the build's edits keep every line)", () => {
    for (const [bundle, source, needle] of [
      ['core.cjs', 'message-store.ts', 'function storeInternals(store'],
      ['cli/cli.cjs', 'cli/main.ts', 'async function main(argv'],
    ] as const) {
      const file = path.join(root, 'dist', bundle);
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      const at = lines.findIndex((l) => l.includes(needle));
      const map = new SourceMap(JSON.parse(fs.readFileSync(`${file}.map`, 'utf8')) as
        ConstructorParameters<typeof SourceMap>[0]);
      const entry = map.findEntry(at, lines[at]!.indexOf(needle)) as
        { originalSource: string; originalLine: number };
      const libLines = fs.readFileSync(path.join(root, 'lib', source), 'utf8').split('\n');
      expect(entry.originalSource.endsWith(`lib/${source}`)).toBe(true);
      expect(libLines[entry.originalLine]).toContain(needle.split('(')[0]);
    }
  });

  it('gives a bundler the ES module build, which runs bundled (addons left out: plain files)',
    async () => {
      const dir = app();
      fs.writeFileSync(path.join(dir, 'main.mjs'), PROGRAM.replaceAll('import.meta.url',
        'pathToFileURL(process.argv[1])').replace("import { MessageStore",
        "import { pathToFileURL } from 'node:url';\nimport { MessageStore"));
      const result = await build({ absWorkingDir: dir, entryPoints: ['main.mjs'], bundle: true,
        platform: 'node', format: 'esm', target: 'node20', outfile: path.join(dir, 'out.mjs'),
        metafile: true, logLevel: 'silent',
        banner: { js: "import { createRequire as __cr } from 'node:module'; " +
          'const require = __cr(import.meta.url);' } });
      const inputs = Object.keys(result.metafile.inputs);
      expect(inputs.some((f) => f.includes('dist/esm/'))).toBe(true);
      expect(inputs.some((f) => f.endsWith('.cjs'))).toBe(false);
      const bundled = await runNode(['out.mjs'], { cwd: dir });
      expect(bundled.code, bundled.stderr).toBe(0);
      expect(JSON.parse(bundled.stdout.trim())).toEqual({ body: 'cached', shared: true });
    });
});
