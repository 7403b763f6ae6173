/**
 * Child process of `bench:builds`: one case on one build of pocketmq, in a fresh process, then
 * one JSON line on stdout: `{"rate": msgs/s}`.
 *
 * `node dist-bench/bench/builds-child.js <dist> <case> <dataDir> [--quick]`: `<dist>` is a
 * build's dist/ directory (its index.js is imported, so any build with the public API since
 * the first release works). Only the public API is used.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Pocket from '../lib/index.js';

type Flush = 'ASYNC_FLUSH' | 'SYNC_FLUSH';

interface SendCase {
  readonly kind: 'send';
  readonly flush: Flush;
  readonly bodyBytes: number;
  readonly count: number;
  /** Messages sent (in batches) before the timed part: a store in use. */
  readonly warm?: number;
  /** Time the open with the sends. */
  readonly withOpen?: boolean;
}
interface BatchCase { readonly kind: 'batch'; readonly count: number }
interface CatchUpCase {
  readonly kind: 'pull' | 'push';
  readonly count: number;
  /** Body size of the backlog (128 B when not given); over 4 KiB it is stored deflated. */
  readonly bodyBytes?: number;
}
type Case = SendCase | BatchCase | CatchUpCase;

/** The cases, by name; the counts are the full size (`--quick`: a tenth). */
export const CASES: Readonly<Record<string, Case>> = {
  'send-async-128': { kind: 'send', flush: 'ASYNC_FLUSH', bodyBytes: 128, count: 400_000 },
  'send-async-1k': { kind: 'send', flush: 'ASYNC_FLUSH', bodyBytes: 1024, count: 200_000 },
  // Over compressMsgBodyOverHowmuch (4 KiB): each body is deflated before it is stored.
  'send-async-16k': { kind: 'send', flush: 'ASYNC_FLUSH', bodyBytes: 16 * 1024, count: 60_000 },
  'send-sync-128': { kind: 'send', flush: 'SYNC_FLUSH', bodyBytes: 128, count: 200_000 },
  'send-sync-1k': { kind: 'send', flush: 'SYNC_FLUSH', bodyBytes: 1024, count: 100_000 },
  'warm-async-128': { kind: 'send', flush: 'ASYNC_FLUSH', bodyBytes: 128, count: 400_000,
    warm: 400_000 },
  'warm-sync-128': { kind: 'send', flush: 'SYNC_FLUSH', bodyBytes: 128, count: 200_000,
    warm: 400_000 },
  'batch-128': { kind: 'batch', count: 800_000 },
  'pull-128': { kind: 'pull', count: 400_000 },
  'pull-1k': { kind: 'pull', count: 200_000, bodyBytes: 1024 },
  'pull-16k': { kind: 'pull', count: 40_000, bodyBytes: 16 * 1024 },
  'push-128': { kind: 'push', count: 400_000 },
  'open-async-128': { kind: 'send', flush: 'ASYNC_FLUSH', bodyBytes: 128, count: 400_000,
    withOpen: true },
  'open-async-1k': { kind: 'send', flush: 'ASYNC_FLUSH', bodyBytes: 1024, count: 200_000,
    withOpen: true },
};

const TOPIC = 't';
const IN_FLIGHT = 256;
const BATCH = 32;
const BATCHES_IN_FLIGHT = 8;

/** `count` messages of `body` sent in batches of 32, `inFlight` batches at a time. */
async function sendBatches(producer: Pocket.Producer, body: Buffer, count: number,
  inFlight: number): Promise<void> {
  const batch = Array.from({ length: BATCH }, () => ({ topic: TOPIC, body }));
  let sent = 0;
  const lane = async (): Promise<void> => {
    while (sent < count) {
      sent += BATCH;
      await producer.sendBatch(batch);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

async function openStore(pocket: typeof Pocket, dir: string, flush: Flush = 'ASYNC_FLUSH'):
  Promise<Pocket.MessageStore> {
  const store = await pocket.MessageStore.open(dir, { flushDiskType: flush });
  await store.createTopic(TOPIC, { queueNums: 4 });
  return store;
}

/** msgs/s of the case's timed part. */
async function measure(pocket: typeof Pocket, c: Case, count: number, dir: string):
  Promise<number> {
  if (c.kind === 'send') {
    const opened = performance.now();
    const store = await openStore(pocket, dir, c.flush);
    const producer = store.createProducer({ group: 'pg' });
    const body = Buffer.alloc(c.bodyBytes, 1);
    if (c.warm !== undefined) await sendBatches(producer, body, c.warm, 1);
    const started = performance.now();
    let sent = 0;
    const lane = async (): Promise<void> => {
      while (sent < count) {
        sent++;
        await producer.send({ topic: TOPIC, body });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    const ms = performance.now() - (c.withOpen === true ? opened : started);
    await store.close();
    return count / (ms / 1000);
  }
  const body = Buffer.alloc(c.kind === 'batch' ? 128 : c.bodyBytes ?? 128, 1);
  if (c.kind === 'batch') {
    const store = await openStore(pocket, dir);
    const producer = store.createProducer({ group: 'pg' });
    const started = performance.now();
    await sendBatches(producer, body, count, BATCHES_IN_FLIGHT);
    const ms = performance.now() - started;
    await store.close();
    return count / (ms / 1000);
  }
  // Catch-up: a backlog written and closed first, read by a new group from the first offset.
  const writer = await openStore(pocket, dir);
  await sendBatches(writer.createProducer({ group: 'pg' }), body, count, 1);
  await writer.close();
  const store = await pocket.MessageStore.open(dir, {});
  const started = performance.now();
  let got = 0;
  const from = 'CONSUME_FROM_FIRST_OFFSET';
  if (c.kind === 'push') {
    const consumer = store.createPushConsumer({ group: 'cg', consumeFromWhere: from,
      consumeMessageBatchMaxSize: BATCH });
    consumer.subscribe(TOPIC, '*');
    await new Promise<void>((resolve) => {
      consumer.registerMessageListener((messages) => {
        got += messages.length;
        if (got >= count) resolve();
        return 'CONSUME_SUCCESS';
      });
      void consumer.start();
    });
  } else {
    const consumer = store.createPullConsumer({ group: 'cg', consumeFromWhere: from });
    consumer.subscribe(TOPIC, '*');
    while (got < count) got += (await consumer.poll(1000)).length;
  }
  const ms = performance.now() - started;
  await store.close();
  return count / (ms / 1000);
}

async function main(): Promise<void> {
  const [dist, name, dataDir] = process.argv.slice(2);
  const c = name === undefined ? undefined : CASES[name];
  if (dist === undefined || c === undefined || dataDir === undefined) {
    throw new Error('usage: builds-child.js <dist> <case> <dataDir> [--quick]');
  }
  const quick = process.argv.includes('--quick');
  const entry = pathToFileURL(path.join(path.resolve(dist), 'index.js')).href;
  const pocket = await import(entry) as typeof Pocket;
  const dir = fs.mkdtempSync(path.join(dataDir, 'builds-'));
  try {
    const count = quick ? c.count / 10 : c.count;
    const rate = await measure(pocket, quick && 'warm' in c && c.warm !== undefined
      ? { ...c, warm: c.warm / 10 } : c, count, dir);
    process.stdout.write(`${JSON.stringify({ rate: Math.round(rate) })}\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
