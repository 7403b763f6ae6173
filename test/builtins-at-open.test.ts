/**
 * Which of Node's own modules a plain import, open, send and close load, in a fresh process as
 * an application runs it (the package's built entry point). Each of those named below costs a
 * short-lived process one to three milliseconds to load, and a plain open needs none of them:
 * the lock socket listens through Node's pipe binding, not net.Server (which brings node:net,
 * node:stream and node:cluster), and the main thread is told apart from a worker without
 * node:worker_threads.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, expect, it } from 'vitest';
import { useTempDirs } from './support/backends.js';
import { ensureBuilt } from './support/dist.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'dist', 'index.js');

/** Node's modules a plain open never needs. */
const UNWANTED = ['net', 'stream', 'cluster', 'worker_threads', 'child_process', 'dgram',
  'crypto', 'zlib', 'os', 'perf_hooks', 'http'];

const tmp = useTempDirs('pmq-builtins-');

beforeAll(() => ensureBuilt());

/** Import, open `data` (SYNC_FLUSH), send one message, close; the modules each step loaded. */
const program = `
const loaded = () => new Set(process.moduleLoadList);
const step = (before) => process.moduleLoadList.filter((m) => !before.has(m));
const data = process.argv[1];
let before = loaded();
const { MessageStore } = await import(${JSON.stringify(entry)});
const importing = step(before);
before = loaded();
const store = await MessageStore.open(data, { flushDiskType: 'SYNC_FLUSH' });
const opening = step(before);
before = loaded();
const sent = await store.createProducer({ group: 'g' }).send({ topic: 't', body: 'hello' });
await store.close();
const rest = step(before);
console.log(JSON.stringify({ importing, opening, rest, status: sent.status }));
`;

function run(dir: string):
  { importing: string[]; opening: string[]; rest: string[]; status: string } {
  const out = execFileSync(process.execPath,
    ['--input-type=module', '-e', program, path.join(dir, 'data')],
    { encoding: 'utf8', timeout: 30_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as ReturnType<typeof run>;
}

/** The public modules among `entries` ('NativeModule net' -> 'net'). */
function publicModules(entries: string[]): string[] {
  return entries.filter((e) => e.startsWith('NativeModule ') && !e.includes('internal/'))
    .map((e) => e.slice('NativeModule '.length));
}

it('loads none of node:net, node:stream, node:cluster or node:worker_threads for a plain ' +
  'open, send and close, on a new store and on one that exists', () => {
  const dir = tmp.make();
  for (const round of ['new', 'existing']) {
    const { importing, opening, rest, status } = run(dir);
    expect(status, round).toBe('SEND_OK');
    const all = publicModules([...importing, ...opening, ...rest]);
    expect(all.filter((m) => UNWANTED.includes(m)), round).toEqual([]);
    // The lock socket: the pipe binding, and nothing else, at open.
    expect(opening, round).toContain('Internal Binding pipe_wrap');
  }
});
