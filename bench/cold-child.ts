/**
 * Child process of the cold scenario: one short-lived process as a CLI run or an app's start
 * is, in one of two roles.
 *
 * `fill <contender> <dir> <count> <bodyBytes> [queues]`: makes a store with `count` messages in
 * its durable mode (pocketmq SYNC_FLUSH, SQLite WAL FULL, lmdb sync) and closes it; pocketmq's
 * topic gets `queues` queues (default: the store's 4), which the messages take in turn. Not
 * timed.
 *
 * `run <contender> <dir> <bodyBytes>`: from before the library's import to after its close:
 * import, open (`dir` may be empty or hold a store), one durable send, close. Prints one JSON
 * line: the milliseconds of each part and in all, and the CPU time of the same span
 * (`process.cpuUsage`, user + system, steadier than wall time on a shared machine).
 * pocketmq is imported as an application imports it: the package's main entry as `npm run build`
 * makes it (dist/index.js, bundled); a peer through its module in bench/peers/, which imports the
 * library. The bench's own modules (that one, peer.ts and what they import) are loaded before
 * the clock starts: `import` is the library's load alone, for every contender.
 */
import type * as PocketModule from '../lib/index.js';
import type { MessageStore } from '../lib/index.js';
import type { Producer } from '../lib/client/producer.js';
import type { Peer, PeerQueue } from './peers/peer.js';
// The library's own clock, not the global `performance`: that would load node:perf_hooks into
// every child (half a megabyte of young objects), which moved a garbage collection into the
// timed span of a library that itself loads none of it. (A small module, not the library.)
import { monotonicMs as now } from '../lib/builtins.js';

const TOPIC = 'cold';

interface Contender {
  /** `queues`: for pocketmq, the topic is made with that many queues (fill only). */
  open(dir: string, queues?: number): Promise<void>;
  send(body: Buffer): Promise<void>;
  close(): Promise<void>;
  /** Messages the store in `dir` holds (opens it again): the row's check. */
  count(dir: string): Promise<number>;
}

/** Imports pocketmq (timed as `import`) and returns its open/send/close. */
async function pocketmq(): Promise<Contender> {
  // From dist-bench/bench/: the package's own build, not the copy compiled with the benchmarks.
  const entry = new URL('../../dist/index.js', import.meta.url).href;
  const pocket = await import(entry) as typeof PocketModule;
  let store: MessageStore | null = null;
  let producer: Producer | null = null;
  return {
    async open(dir, queues) {
      store = await pocket.MessageStore.open(dir, { flushDiskType: 'SYNC_FLUSH' });
      if (queues !== undefined) await store.createTopic(TOPIC, { queueNums: queues });
      producer = store.createProducer({ group: 'cold' });
    },
    async send(body) {
      const r = await producer!.send({ topic: TOPIC, body });
      if (r.status !== 'SEND_OK') throw new Error(`pocketmq send: ${r.status}`);
    },
    close: () => store!.close(),
    async count(dir) {
      const again = await pocket.MessageStore.open(dir);
      const n = (await again.stats()).topics.find((t) => t.topic === TOPIC)?.messages ?? -1;
      await again.close();
      return n;
    },
  };
}

async function peer(loadLibrary: () => Promise<Peer>): Promise<Contender> {
  const p = await loadLibrary();
  const mode = p.modes.find((m) => m.durable)!;
  let queue: PeerQueue | null = null;
  return {
    async open(dir) {
      queue = await p.open(dir, mode, 1);
    },
    send: (body) => queue!.put(body),
    close: () => queue!.close(),
    async count(dir) {
      const again = await p.open(dir, mode, 1);
      const n = await again.count();
      await again.close();
      return n;
    },
  };
}

/**
 * What `contender` needs of this bench's own modules, loaded now (untimed); the function it
 * returns loads the library (timed as `import`) and gives its open, send and close.
 */
async function prepare(contender: string): Promise<() => Promise<Contender>> {
  if (contender === 'pocketmq') return pocketmq;
  const { peerLoader } = await import('./peers/peer.js');
  const loadLibrary = await peerLoader(contender);
  return () => peer(loadLibrary);
}

async function fill(contender: string, dir: string, count: number, body: Buffer,
  queues?: number): Promise<void> {
  const c = await (await prepare(contender))();
  await c.open(dir, queues);
  for (let i = 0; i < count; i++) await c.send(body);
  await c.close();
}

async function run(contender: string, dir: string, body: Buffer): Promise<void> {
  const load = await prepare(contender);
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const c = await load();
  const t1 = now();
  await c.open(dir);
  const t2 = now();
  await c.send(body);
  const t3 = now();
  await c.close();
  const t4 = now();
  const cpu = process.cpuUsage(cpu0);
  const ms = (v: number): number => Math.round(v * 100) / 100;
  process.stdout.write(`${JSON.stringify({ importMs: ms(t1 - t0), openMs: ms(t2 - t1),
    sendMs: ms(t3 - t2), closeMs: ms(t4 - t3), totalMs: ms(t4 - t0),
    cpuMs: ms((cpu.user + cpu.system) / 1000), check: await c.count(dir) })}\n`);
}

const [role, contender, dir, a, b, queues] = process.argv.slice(2);
if (role === 'fill') {
  await fill(contender!, dir!, Number(a), Buffer.alloc(Number(b), 0x63),
    queues === undefined ? undefined : Number(queues));
} else if (role === 'run') {
  await run(contender!, dir!, Buffer.alloc(Number(a), 0x63));
} else {
  throw new Error('usage: cold-child.js fill <contender> <dir> <count> <bodyBytes> [queues] | ' +
    'run <contender> <dir> <bodyBytes>');
}
