/**
 * The examples users copy: README's example is examples/quickstart.js byte for byte, each
 * recipe of docs/recipes.md is its examples/ file byte for byte, and every example runs as a
 * child process on a temporary directory (through the package name, so on dist/), ends by
 * itself (or on SIGTERM / SIGINT for the worker) with exit code 0 and prints what it should.
 * TypeScript examples are type-checked against the published types and run as TypeScript
 * compiles them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MessageStore } from '../lib/index.js';
import { ensureBuilt } from './support/dist.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const example = (name: string): string => path.join(root, 'examples', name);
/** A child that has not ended by then is killed and the test fails. */
const CHILD_LIMIT_MS = 30_000;

let tmp = '';

beforeAll(() => {
  ensureBuilt();
});

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-examples-'));
});

afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Child {
  readonly pid: number;
  /** Resolves once stdout holds a line matching `pattern` this many times. */
  lines(pattern: RegExp, count?: number): Promise<void>;
  readonly done: Promise<{ code: number | null; signal: string | null; stdout: string;
    stderr: string }>;
}

function start(file: string, args: readonly string[] = []): Child {
  const child = spawn(process.execPath, [file, ...args], { cwd: tmp,
    env: { ...process.env, NODE_DEBUG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const killer = setTimeout(() => child.kill('SIGKILL'), CHILD_LIMIT_MS);
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string;
    stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      for (const w of waiters) w();
      resolve({ code, signal, stdout, stderr });
    });
  });
  const lines = (pattern: RegExp, count = 1): Promise<void> => new Promise((resolve, reject) => {
    const check = (): void => {
      const found = stdout.split('\n').filter((l) => pattern.test(l)).length;
      if (found >= count) {
        waiters.delete(check);
        resolve();
      } else if (child.exitCode !== null || child.signalCode !== null) {
        waiters.delete(check);
        reject(new Error(`the child ended before ${count} × ${pattern}:\n${stdout}\n${stderr}`));
      }
    };
    waiters.add(check);
    check();
  });
  return { pid: child.pid!, lines, done };
}

async function run(file: string, args: readonly string[] = []): Promise<string> {
  const result = await start(file, args).done;
  expect(result.stderr).toBe('');
  expect(result).toMatchObject({ code: 0, signal: null });
  return result.stdout;
}

/** The code block of `markdown` after the first line equal to `marker`, as its file holds it. */
function blockAfter(markdown: string, marker: string): string {
  const at = markdown.split('\n').indexOf(marker);
  expect(at, `${marker} is in the document`).toBeGreaterThanOrEqual(0);
  const rest = markdown.split('\n').slice(at + 1);
  const open = rest.findIndex((l) => /^```(js|ts)$/.test(l));
  const close = rest.findIndex((l, i) => i > open && l === '```');
  return `${rest.slice(open + 1, close).join('\n')}\n`;
}

/** Type errors of TypeScript examples, checked against dist/*.d.ts as users' code is. */
function typeErrors(file: string): string[] {
  const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'], types: ['node'], strict: true,
    noEmit: true, skipLibCheck: true });
  return ts.getPreEmitDiagnostics(program).map((d) =>
    ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

/** A TypeScript example compiled as tsc would (target ES2022), importing dist/ directly. */
function compiled(file: string): string {
  const { outputText } = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  const dist = pathToFileURL(path.join(root, 'dist', 'index.js')).href;
  const out = path.join(tmp, `${path.basename(file, '.ts')}.mjs`);
  fs.writeFileSync(out, outputText.replace(/from 'pocketmq'/g, `from '${dist}'`));
  return out;
}

async function fill(dir: string, jobs: number): Promise<void> {
  const store = await MessageStore.open(dir);
  const producer = store.createProducer({ group: 'fill' });
  for (let i = 0; i < jobs; i++) await producer.send({ topic: 'jobs', body: `job ${i}` });
  await store.close();
}

/** Sum of the group's committed offsets and of its lag, read back from the files. */
async function progress(dir: string, group: string): Promise<{ offsets: number; lag: number }> {
  const store = await MessageStore.open(dir);
  try {
    const queues = await store.consumerProgress(group);
    return { offsets: queues.reduce((n, q) => n + q.consumerOffset, 0),
      lag: queues.reduce((n, q) => n + q.lag, 0) };
  } finally {
    await store.close();
  }
}

describe("README's example", () => {
  it('is examples/quickstart.js, byte for byte (npm run example runs it)', () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    expect(blockAfter(readme, '## Example')).toBe(fs.readFileSync(example('quickstart.js'),
      'utf8'));
  });

  it('runs to its end and prints the send, both consumers and the lookups', async () => {
    const out = (await run(example('quickstart.js'))).split('\n');
    const id = out[0]!.split(' ')[1];
    expect(out[0]).toMatch(/^SEND_OK [0-9A-F]{24} [0-3] 0$/);
    expect(out.slice(1, 5)).toEqual([`billing ${id} TagA hello`, 'audit 0 hello', 'hello', '1']);
    // consumerProgress: four queues, nothing left to consume.
    expect(out.filter((l) => l.trim() === 'lag: 0,')).toHaveLength(4);
    expect(fs.existsSync(path.join(tmp, 'data', 'example', 'commitlog'))).toBe(true);
  });
});

describe('docs/recipes.md', () => {
  const recipes = fs.readFileSync(path.join(root, 'docs', 'recipes.md'), 'utf8');

  it.each(['worker.js', 'batch-job.ts', 'json-bodies.ts', 'retries-dlq.js'])(
    'shows examples/%s byte for byte', (name) => {
      expect(blockAfter(recipes, `<!-- examples/${name} -->`))
        .toBe(fs.readFileSync(example(name), 'utf8'));
    });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'worker.js closes cleanly on %s: exit code 0, every offset written', async (signal) => {
      const dir = path.join(tmp, 'store');
      await fill(dir, 5);
      const worker = start(example('worker.js'), [dir]);
      await worker.lines(/^handled job \d$/, 5);
      await worker.lines(/^worker started$/);
      process.kill(worker.pid, signal);
      const result = await worker.done;
      expect(result.stderr).toBe('');
      expect(result).toMatchObject({ code: 0, signal: null });
      expect(result.stdout.split('\n').slice(-3)).toEqual([`${signal}: closing`, 'closed', '']);
      expect(await progress(dir, 'worker')).toEqual({ offsets: 5, lag: 0 });
    });

  it('json-bodies.ts type-checks, and its order comes back parsed', async () => {
    expect(typeErrors(example('json-bodies.ts'))).toEqual([]);
    expect(await run(compiled(example('json-bodies.ts')), [path.join(tmp, 'store')]))
      .toBe('order o-1 150 book + pen\n');
  });

  it('retries-dlq.js: three attempts, the dead letter, its resend and redelivery', async () => {
    expect(await run(example('retries-dlq.js'), [path.join(tmp, 'store')])).toBe([
      'attempt 1 charge order o-1', 'attempt 2 charge order o-1', 'attempt 3 charge order o-1',
      'dead letter %DLQ%payments charge order o-1', 'resent 1 remaining 0',
      'handled charge order o-1 after the resend', ''].join('\n'));
  });

  it('batch-job.ts: `await using` closes the store and writes the offsets', async () => {
    const dir = path.join(tmp, 'store');
    await fill(dir, 3);
    const disposable = typeof (MessageStore.prototype as Partial<AsyncDisposable>)[
      Symbol.asyncDispose] === 'function';
    if (!disposable) {
      // Until MessageStore has Symbol.asyncDispose, the recipe fails as TypeScript says.
      expect(typeErrors(example('batch-job.ts')).join('\n')).toMatch(/Symbol\.asyncDispose/);
      const result = await start(compiled(example('batch-job.ts')), [dir]).done;
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('Object not disposable');
      return;
    }
    expect(typeErrors(example('batch-job.ts'))).toEqual([]);
    expect(await run(compiled(example('batch-job.ts')), [dir]))
      .toBe('jobs queued so far: 3\nclosed\n');
    expect(await progress(dir, 'nightly-report')).toEqual({ offsets: 3, lag: 0 });
  });
});
