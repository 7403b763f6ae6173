/**
 * `npm install pocketmq` on a machine with no compiler: the package is packed, installed into a
 * fresh app whose PATH has only node, npm and sh (no python3, make or g++, so node-gyp fails),
 * and the app opens a store, sends and reads back on the plain-file backend. The native addons
 * are optional dependencies: their failed builds must not fail the install.
 *
 * Offline-ish: `--prefer-offline` takes what the npm cache holds (warm after `npm ci`); the
 * mmap addon's prebuilt-binary download is pointed at a closed loopback port, so nothing leaves
 * the machine but registry requests for what the cache lacks.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureBuilt } from './support/dist.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Bounds for the slow steps: this is the longest test of the suite, and must stay bounded. */
const PACK_TIMEOUT_MS = 60_000;
const INSTALL_TIMEOUT_MS = 150_000;

let work: string;

beforeAll(() => ensureBuilt());

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-install-'));
});

afterEach(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

/** npm's own script, run with this node (npm_execpath under npm, else the npm on PATH). */
function npmCli(): string {
  const fromEnv = process.env.npm_execpath;
  if (fromEnv !== undefined && /npm-cli\.js$/.test(fromEnv)) return fromEnv;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'npm');
    if (fs.existsSync(candidate)) return fs.realpathSync(candidate);
  }
  throw new Error('npm not found on PATH');
}

/** A bin directory with node, npm and sh only: no compiler, no make, no python. */
function bareToolchain(cli: string): string {
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync(cli, path.join(bin, 'npm'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  return bin;
}

const appProgram = `
import { MessageStore } from 'pocketmq';
const warnings = [];
const note = (m) => warnings.push(m);
const logger = { debug() {}, info() {}, warn: note, error: note };
const store = await MessageStore.open('./data', { logger, flushDiskType: 'SYNC_FLUSH' });
const sent = await store.createProducer({ group: 'g' }).send({ topic: 't', body: 'installed' });
const found = await store.viewMessage(sent.msgId);
const { backend } = await store.stats();
const out = { status: sent.status, body: found.body.toString(), backend, warnings };
await store.close();
console.log(JSON.stringify(out));
`;

describe('npm install on a machine without a compiler', () => {
  it('installs from the packed tarball, and the app stores and reads on plain files',
    { timeout: PACK_TIMEOUT_MS + INSTALL_TIMEOUT_MS + 30_000 }, () => {
      const cli = npmCli();
      const packed = execFileSync(process.execPath,
        [cli, 'pack', '--ignore-scripts', '--silent', '--pack-destination', work],
        { cwd: root, encoding: 'utf8', timeout: PACK_TIMEOUT_MS }).trim().split('\n').pop()!;
      const tarball = path.join(work, packed);
      expect(fs.existsSync(tarball)).toBe(true);
      const app = path.join(work, 'app');
      fs.mkdirSync(app);
      fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({
        name: 'no-compiler-app', private: true, type: 'module',
        allowScripts: { '@riaskov/mmap-io': true, 'fs-ext': true },
      }));
      fs.writeFileSync(path.join(app, 'main.js'), appProgram);
      const env: NodeJS.ProcessEnv = {
        HOME: process.env.HOME, PATH: bareToolchain(cli),
        // node-pre-gyp's download of a prebuilt binary: a closed port on loopback.
        npm_config_mmap_io_binary_host_mirror: 'http://127.0.0.1:9/',
      };
      execFileSync(process.execPath, [cli, 'install', '--prefer-offline', '--no-audit',
        '--no-fund', '--loglevel=error', tarball],
      { cwd: app, env, encoding: 'utf8', timeout: INSTALL_TIMEOUT_MS, stdio: 'pipe' });
      const modules = path.join(app, 'node_modules');
      expect(fs.existsSync(path.join(modules, 'pocketmq', 'dist', 'index.js'))).toBe(true);
      // Their builds failed (no toolchain) and npm dropped them, as optional dependencies.
      expect(fs.existsSync(path.join(modules, 'fs-ext'))).toBe(false);
      expect(fs.existsSync(path.join(modules, '@riaskov', 'mmap-io'))).toBe(false);
      const out = execFileSync(process.execPath, ['main.js'],
        { cwd: app, env, encoding: 'utf8', timeout: 30_000 });
      const result = JSON.parse(out.trim()) as { status: string; body: string; backend: string;
        warnings: string[]; };
      expect(result).toMatchObject({ status: 'SEND_OK', body: 'installed', backend: 'file' });
      expect(result.warnings).toHaveLength(1);
      expect(result.warnings[0]).toMatch(/mmap addon did not load/);
    });
});
