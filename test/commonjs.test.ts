/**
 * pocketmq from CommonJS (`require('pocketmq')`, Node >= 20.19 loads ESM without top-level
 * await), through the package name in a temporary app, and the same with the native addons
 * missing, as in a bundle that dropped them: the plain-file backend and one warning, no crash.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ensureBuilt } from './support/dist.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let app: string;

beforeAll(() => ensureBuilt());

beforeEach(() => {
  app = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-cjs-'));
  fs.mkdirSync(path.join(app, 'node_modules'));
  fs.symlinkSync(root, path.join(app, 'node_modules', 'pocketmq'), 'dir');
  fs.writeFileSync(path.join(app, 'package.json'), '{ "name": "cjs-app", "private": true }\n');
});

afterEach(() => {
  fs.rmSync(app, { recursive: true, force: true });
});

/** A CommonJS program: open a store, send, read back; prints one JSON line. */
const program = `
const { MessageStore } = require('pocketmq');
const path = require('node:path');
(async () => {
  const warnings = [];
  const note = (m) => warnings.push(m);
  const logger = { debug() {}, info() {}, warn: note, error: note };
  const store = await MessageStore.open(path.join(__dirname, 'data'), { logger });
  const sent = await store.createProducer({ group: 'g' }).send({ topic: 't', body: 'from cjs' });
  const found = await store.viewMessage(sent.msgId);
  const backend = (await store.stats()).backend;
  await store.close();
  const body = found.body.toString();
  console.log(JSON.stringify({ status: sent.status, body, backend, warnings }));
})().catch((err) => { console.error(err); process.exit(1); });
`;

/** Loaded first: makes the addons unresolvable, as a bundle without them. */
const dropAddons = `
const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'fs-ext' || request === '@riaskov/mmap-io' ||
    request.startsWith('@riaskov/mmap-io/')) {
    const err = new Error("Cannot find module '" + request + "'");
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  return resolve.call(this, request, ...rest);
};
// pocketmq also loads the binaries straight from node_modules: gone too.
const dlopen = process.dlopen;
process.dlopen = function (module, file, ...rest) {
  if (/(?:fs_ext|mmap_io)[.]node$/.test(file)) {
    const err = new Error(file + ': cannot open shared object file: No such file or directory');
    err.code = 'ERR_DLOPEN_FAILED';
    throw err;
  }
  return dlopen.call(this, module, file, ...rest);
};
`;

function run(args: string[]): { status: string; body: string; backend: string;
  warnings: string[]; } {
  const out = execFileSync(process.execPath, args, { cwd: app, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as ReturnType<typeof run>;
}

describe('require("pocketmq")', () => {
  it('opens a store, sends and reads back from a CommonJS file', () => {
    fs.writeFileSync(path.join(app, 'main.cjs'), program);
    const result = run(['main.cjs']);
    expect(result).toEqual({ status: 'SEND_OK', body: 'from cjs', backend: 'mmap', warnings: [] });
  });

  it('runs on plain files with one warning when the addons cannot be found', () => {
    fs.writeFileSync(path.join(app, 'main.cjs'), program);
    fs.writeFileSync(path.join(app, 'drop-addons.cjs'), dropAddons);
    const result = run(['--require', './drop-addons.cjs', 'main.cjs']);
    expect(result.status).toBe('SEND_OK');
    expect(result.body).toBe('from cjs');
    expect(result.backend).toBe('file');
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(/mmap addon did not load.*@riaskov\/mmap-io/);
  });
});

const importsAddon = /(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"](?:fs-ext|@riaskov\/mmap-io)['"]/;

describe('the addons are touched by one module only', () => {
  it('no file under lib/ imports fs-ext or @riaskov/mmap-io (native.ts loads them by name, ' +
    'inside a try)', () => {
    const offenders: string[] = [];
    const walk = (d: string): void => {
      for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
        const full = path.join(d, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (importsAddon.test(fs.readFileSync(full, 'utf8'))) {
          offenders.push(path.relative(root, full));
        }
      }
    };
    walk(path.join(root, 'lib'));
    expect(offenders).toEqual([]);
    const native = fs.readFileSync(path.join(root, 'lib', 'store', 'io', 'native.ts'), 'utf8');
    expect(native).toContain("attempt<FlockAddon>('fs-ext')");
  });
});
