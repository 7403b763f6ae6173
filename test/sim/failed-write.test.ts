/**
 * A staged window whose write fails (the bug the simulator found first with write faults): the
 * store stops, reads see only what reached the files and never report the write's error, the
 * failed write is not retried, and a reopen recovers what was written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/message-store.js';
import type { PullConsumer } from '../../lib/client/pull-consumer.js';
import { ManualClock } from '../../lib/store/clock.js';
import type { FlushDiskType } from '../../lib/store/options.js';
import { SimBackend } from '../support/sim-backend.js';
import { turns } from './turns.js';
import { storeInternals } from '../../lib/internal.js';

const TOPIC = 'Failed';
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

async function open(sim: SimBackend, dir: string, mode: FlushDiskType):
  Promise<{ store: MessageStore; consumer: PullConsumer }> {
  const store = await MessageStore.open(dir, { backend: sim, clock: new ManualClock(),
    flushDiskType: mode, commitLogSegmentSize: 64 * 1024, consumeQueueEntriesPerFile: 32 });
  await store.createTopic(TOPIC, { queueNums: 1 });
  const consumer = store.createPullConsumer({ group: 'g', autoCommit: false,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
  consumer.assign([{ topic: TOPIC, queueId: 0 }]);
  await consumer.start();
  return { store, consumer };
}

function bodies(messages: readonly { body: Buffer }[]): string[] {
  return messages.map((m) => m.body.toString());
}

async function setup(mode: FlushDiskType): Promise<{ sim: SimBackend; dir: string;
  store: MessageStore; consumer: PullConsumer; send: (body: string) => Promise<unknown> }> {
  const sim = new SimBackend({ seed: 7 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-failed-write-'));
  dirs.push(dir);
  const { store, consumer } = await open(sim, dir, mode);
  const producer = store.createProducer({ group: 'p' });
  const send = (body: string): Promise<unknown> =>
    producer.send({ topic: TOPIC, body: Buffer.from(body) }, { selector: () => 0 });
  await send('a');
  await turns(2); // 'a' is in the file
  return { sim, dir, store, consumer, send };
}

async function reopened(sim: SimBackend, dir: string, store: MessageStore): Promise<string[]> {
  await store.close().catch(() => undefined);
  sim.clearFaults();
  const again = await open(sim, dir, 'ASYNC_FLUSH');
  const got = bodies(await again.consumer.poll(0));
  await again.store.close();
  return got;
}

describe('a window write that fails', () => {
  it('stops the store; a poll reads what was written, then reopening recovers it', async () => {
    const { sim, dir, store, consumer, send } = await setup('ASYNC_FLUSH');
    const logWrites = sim.failWhen((e) => e.op === 'write' && e.path.includes('commitlog') &&
      'EIO');
    const sent = send('b'); // acknowledged: ASYNC_FLUSH answers before the window is written
    expect(bodies(await consumer.poll(0))).toEqual(['a']);
    logWrites();
    await expect(sent).resolves.toBeDefined();
    await turns(2);
    expect(storeInternals(store).engine.isOpen).toBe(false);
    await expect(send('c')).rejects.toMatchObject({ code: 'STORE_STOPPED' });
    expect(await consumer.poll(0)).toEqual([]); // no retry of the failed write, no error
    expect(await reopened(sim, dir, store)).toEqual(['a']);
  });

  it('under SYNC_FLUSH fails the send that waited for it', async () => {
    const { sim, dir, store, consumer, send } = await setup('SYNC_FLUSH');
    sim.failWhen((e) => e.op === 'write' && e.path.includes('commitlog') && 'ENOSPC');
    const sent = send('b');
    expect(bodies(await consumer.poll(0))).toEqual(['a']);
    await expect(sent).rejects.toMatchObject({ code: 'DISK_FULL' });
    expect(storeInternals(store).engine.isOpen).toBe(false);
    expect(await reopened(sim, dir, store)).toEqual(['a']);
  });

  it('of a ConsumeQueue still delivers the records that reached the log', async () => {
    const { sim, dir, store, consumer, send } = await setup('ASYNC_FLUSH');
    sim.failWhen((e) => e.op === 'write' && e.path.includes('consumequeue') && 'EIO');
    void send('b');
    expect(bodies(await consumer.poll(0))).toEqual(['a', 'b']);
    await turns(2);
    expect(storeInternals(store).engine.isOpen).toBe(false);
    expect(await reopened(sim, dir, store)).toEqual(['a', 'b']);
  });
});
