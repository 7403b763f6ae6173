/**
 * Scenario `query`: finding one message in a store of 1,000,000 (20,000 with
 * `--quick`) messages of 128 B, each sent with its own key `k-<i>` and its number i in the
 * first 4 body bytes. The store is loaded, closed and opened again first, so lookups read the
 * files as a CLI opening the directory would (from the OS page cache: the files fit in RAM).
 * - `by-id`: `MessageStore.viewMessage(msgId)` for 100,000 (5,000) distinct random messages, the
 *   ids kept from their SendResults;
 * - `by-key`: `queryMessage({ topic, key, maxNum: 1 })` for another such sample;
 * each with 1 lookup in flight (the next issued when the last settled) and with 32, after an
 * untimed warm-up of 1,000 lookups.
 * Every lookup checks the message's key and the number in its body; a miss or a wrong message
 * fails the run. `check` is the sum of the numbers read (the same for every contender).
 * The peers (peers/*.ts, `PeerLookup`) load the same messages, close and reopen, and look up
 * the same samples, by their integer id and by key.
 */
import fs from 'node:fs';
import { MessageStore, type Message, type MessageExt } from '../lib/index.js';
import { drive, median, nowNs, row, type BenchContext, type Row } from './harness.js';
import { loadPeers, type Peer } from './peers/peer.js';

const TOPIC = 'bench';
const BODY_BYTES = 128;
/** Lookups in flight: one at a time (a CLI, a script), and 32 (a server answering requests). */
const IN_FLIGHT = [1, 32];
/** pocketmq's load: sendBatch of this many messages, this many batches in flight. */
const BATCH = 32;
const BATCHES_IN_FLIGHT = 64;
/** Lookups before each mode's rows, not counted. */
const WARMUP_LOOKUPS = 1000;

type Mode = 'by-id' | 'by-key';

/** What a lookup found: the key and body it checks. */
type Hit = { readonly key: string; readonly body: Buffer } | null;

/** The two samples of message numbers looked up: by id, and by key. */
interface Samples { readonly byId: Uint32Array; readonly byKey: Uint32Array }

/** Lookup `j` of a mode: the message `samples.<mode>[j]`. */
type Find = (j: number) => Promise<Hit>;

function sizes(ctx: BenchContext): { messages: number; lookups: number } {
  return ctx.quick ? { messages: 20_000, lookups: 5_000 }
    : { messages: 1_000_000, lookups: 100_000 };
}

function keyOf(i: number): string {
  return `k-${i}`;
}

function bodyOf(i: number): Buffer {
  const body = Buffer.allocUnsafe(BODY_BYTES).fill(0x71);
  body.writeUInt32LE(i, 0);
  return body;
}

/** `count` distinct message numbers below `n` in random order, seeded (mulberry32). */
function sample(n: number, count: number, seed: number): Uint32Array {
  if (count > n) throw new Error(`cannot sample ${count} of ${n} messages`);
  let s = seed | 0;
  const random = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const taken = new Uint8Array(n);
  const out = new Uint32Array(count);
  for (let k = 0; k < count;) {
    const i = Math.floor(random() * n);
    if (taken[i] === 0) {
      taken[i] = 1;
      out[k++] = i;
    }
  }
  return out;
}

/** `wanted.length` lookups, `inFlight` at a time, each checked; throws after any miss. */
async function lookupRow(contender: string, mode: Mode, inFlight: number, wanted: Uint32Array,
  find: Find, extra: Record<string, number>): Promise<Row> {
  let check = 0;
  let misses = 0;
  let firstMiss = '';
  const { seconds, lat } = await drive(wanted.length, inFlight, async (j) => {
    const i = wanted[j]!;
    const hit = await find(j);
    if (hit === null || hit.key !== keyOf(i) || hit.body.length !== BODY_BYTES ||
      hit.body.readUInt32LE(0) !== i) {
      if (misses++ === 0) firstMiss = `${i}, ${hit === null ? 'not found' : 'another message'}`;
      return;
    }
    check += hit.body.readUInt32LE(0);
  });
  if (misses > 0) {
    throw new Error(`${contender} ${mode}: ${misses} of ${wanted.length} lookups missed ` +
      `(first: message ${firstMiss})`);
  }
  return row({ scenario: 'query', contender, bodyBytes: BODY_BYTES, mode, inFlight,
    messages: wanted.length, seconds, check, ...lat.summary(), extra });
}

/**
 * The rows of one loaded and reopened store: by id, then by key, at each in-flight count. Each
 * mode starts with an untimed warm-up (JIT, lazily opened files) of its sample's first lookups.
 */
async function lookupRows(names: Record<Mode, string>, samples: Samples,
  finds: Record<Mode, Find>, extra: Record<string, number>): Promise<Row[]> {
  const rows: Row[] = [];
  for (const mode of ['by-id', 'by-key'] as const) {
    const wanted = mode === 'by-id' ? samples.byId : samples.byKey;
    await lookupRow(names[mode], mode, 1, wanted.subarray(0, WARMUP_LOOKUPS), finds[mode], {});
    for (const inFlight of IN_FLIGHT) {
      rows.push(await lookupRow(names[mode], mode, inFlight, wanted, finds[mode], extra));
    }
  }
  return rows;
}

/**
 * Loads `n` messages with sendBatch and closes the store. Returns the load's time (close, which
 * flushes, included) and the msgId of each message of the `byId` sample, in sample order.
 */
async function pocketFill(dir: string, n: number, byId: Uint32Array):
  Promise<{ msgIds: string[]; fillSeconds: number }> {
  const slotOf = new Int32Array(n).fill(-1);
  byId.forEach((i, slot) => {
    slotOf[i] = slot;
  });
  const msgIds = new Array<string>(byId.length).fill('');
  const t0 = nowNs();
  const store = await MessageStore.open(dir);
  await store.createTopic(TOPIC, { queueNums: 4 });
  const producer = store.createProducer({ group: 'bench' });
  const pending: Promise<void>[] = [];
  for (let from = 0; from < n; from += BATCH) {
    const batch: Message[] = [];
    for (let i = from; i < Math.min(n, from + BATCH); i++) {
      batch.push({ topic: TOPIC, keys: keyOf(i), body: bodyOf(i) });
    }
    pending.push(producer.sendBatch(batch).then((results) => results.forEach((r, k) => {
      const slot = slotOf[from + k]!;
      if (slot >= 0) msgIds[slot] = r.msgId;
    })));
    if (pending.length >= BATCHES_IN_FLIGHT) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await store.close();
  return { msgIds, fillSeconds: Number(nowNs() - t0) / 1e9 };
}

function hitOf(m: MessageExt | undefined | null): Hit {
  return m === undefined || m === null ? null : { key: m.keys[0] ?? '', body: m.body };
}

async function pocketRun(ctx: BenchContext, n: number, samples: Samples): Promise<Row[]> {
  const dir = ctx.freshDir('query');
  try {
    const { msgIds, fillSeconds } = await pocketFill(dir, n, samples.byId);
    (globalThis as { gc?: () => void }).gc?.();
    const store = await MessageStore.open(dir);
    try {
      return await lookupRows(
        { 'by-id': 'pocketmq viewMessage', 'by-key': 'pocketmq queryMessage' }, samples, {
          'by-id': (j) => store.viewMessage(msgIds[j]!).then(hitOf),
          'by-key': (j) => store.queryMessage({ topic: TOPIC, key: keyOf(samples.byKey[j]!),
            maxNum: 1 }).then((found) => hitOf(found[0])),
        }, { storedMessages: n, fillMsgsPerSec: Math.round(n / fillSeconds) });
    } finally {
      await store.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function peerRun(ctx: BenchContext, peer: Peer, n: number,
  samples: Samples): Promise<Row[]> {
  const dir = ctx.freshDir(`query-${peer.name}`);
  try {
    const t0 = nowNs();
    const writer = await peer.openLookup(dir);
    await writer.fill(n, keyOf, bodyOf);
    await writer.close();
    const fillSeconds = Number(nowNs() - t0) / 1e9;
    (globalThis as { gc?: () => void }).gc?.();
    const lookup = await peer.openLookup(dir);
    try {
      return await lookupRows({ 'by-id': peer.name, 'by-key': peer.name }, samples, {
        'by-id': (j) => lookup.byId(samples.byId[j]!),
        'by-key': (j) => lookup.byKey(keyOf(samples.byKey[j]!)),
      }, { storedMessages: n, fillMsgsPerSec: Math.round(n / fillSeconds) });
    } finally {
      await lookup.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** `ctx.runs` runs of `make`, each giving rows in the same order; the median of each row. */
async function repeatRows(ctx: BenchContext, make: () => Promise<Row[]>): Promise<Row[]> {
  const runs: Row[][] = [];
  for (let r = 0; r < ctx.runs; r++) runs.push(await make());
  return runs[0]!.map((_, k) => median(runs.map((rows) => rows[k]!)));
}

/** pocketmq, then each peer that loads; the rows grouped by mode and in-flight count. */
export async function run(ctx: BenchContext): Promise<Row[]> {
  const { messages, lookups } = sizes(ctx);
  const samples = { byId: sample(messages, lookups, 1), byKey: sample(messages, lookups, 2) };
  const rows = await repeatRows(ctx, () => pocketRun(ctx, messages, samples));
  for (const peer of await loadPeers(ctx)) {
    rows.push(...await repeatRows(ctx, () => peerRun(ctx, peer, messages, samples)));
  }
  return rows.sort((a, b) => a.mode.localeCompare(b.mode) || a.inFlight - b.inFlight);
}
