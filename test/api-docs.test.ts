/**
 * `npm run docs`: the API reference typedoc builds from lib/index.ts, lib/storage.ts and their
 * TSDoc. The build
 * treats warnings as errors (typedoc.json), so a broken `{@link}`, a malformed tag or a type error
 * fails here. Run into a temporary directory, as a child process (about 6 s).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { runNode, type ChildRun } from './support/child.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let out = '';

beforeEach(() => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-api-docs-'));
});

afterEach(() => {
  fs.rmSync(out, { recursive: true, force: true });
});

function typedoc(args: readonly string[]): Promise<ChildRun> {
  return runNode([path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), ...args],
    { cwd: root });
}

it('builds the API reference from the TSDoc without an error or a warning', async () => {
  const run = await typedoc(['--out', out, '--logLevel', 'Warn']);
  expect(run.stdout + run.stderr).toBe('');
  expect(run.code).toBe(0);
  // The public surface is there, with its TSDoc.
  const store = fs.readFileSync(path.join(out, 'classes', 'pocketmq.MessageStore.html'), 'utf8');
  expect(store).toContain('openReadOnly');
  expect(store).toContain('Shut down every producer and consumer');
  // Both public entry points: `pocketmq` and `pocketmq/storage`.
  for (const page of ['modules/pocketmq.html', 'modules/pocketmq_storage.html',
    'classes/pocketmq.Producer.html', 'classes/pocketmq.PushConsumer.html',
    'classes/pocketmq.PullConsumer.html', 'interfaces/pocketmq.MessageStoreOptions.html']) {
    expect(fs.existsSync(path.join(out, page)), page).toBe(true);
  }
}, 60_000);
