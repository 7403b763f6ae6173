/**
 * One owner per data directory, whatever each side could load (SPEC §5): owners and openers
 * with and without the native addons, in other processes, in this process and in worker
 * threads. Each refusal is STORE_LOCKED, and the owner's SYNC_FLUSH message is still there
 * after it (read-only open and verifyStore beside the owner). A SIGKILLed owner of either kind
 * is replaced at once, with no file deleted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MessageStore } from '../lib/message-store.js';
import { PocketMQError } from '../lib/errors.js';
import { verifyStore } from '../lib/store/verify.js';
import { storeInternals } from '../lib/internal.js';
import { ensureBuilt } from './support/dist.js';
import { childPeer, workerPeer, type Peer } from './support/peers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const failingLoader = (id: string): never => {
  throw new Error(`simulated: ${id} did not build`);
};
const addonOptions = (addons: boolean) => (addons ? {} : { addonLoader: failingLoader });
const kind = (addons: boolean): string => (addons ? 'addons' : 'no addons');
const pairs = [true, false].flatMap((owner) => [true, false].map((opener) => ({
  owner, opener, name: `owner with ${kind(owner)}, opener with ${kind(opener)}`,
})));

let dir: string;
const peers: Peer[] = [];
const stores: MessageStore[] = [];

beforeAll(() => ensureBuilt());

beforeEach(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-lock-')));
});

afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
  await Promise.all(peers.splice(0).map((p) => p.kill()));
  fs.rmSync(dir, { recursive: true, force: true });
});

function track(peer: Peer): Peer {
  peers.push(peer);
  return peer;
}

/** An owner peer's `ready` line: the id of the message it stored. */
async function ready(owner: Peer, addons: boolean): Promise<string> {
  const [word, msgId, backend] = (await owner.next()).split(' ');
  expect(word).toBe('ready');
  expect(backend).toBe(addons ? 'mmap' : 'file');
  return msgId!;
}

/** A store owned in this thread, with one SYNC_FLUSH message: its id. */
async function ownHere(addons: boolean): Promise<{ store: MessageStore; msgId: string }> {
  const store = await MessageStore.open(dir, { ...addonOptions(addons),
    flushDiskType: 'SYNC_FLUSH', commitLogSegmentSize: 4 * 2 ** 20 });
  stores.push(store);
  expect(storeInternals(store).engine.backendKind).toBe(addons ? 'mmap' : 'file');
  const sent = await store.createProducer({ group: 'owner' }).send({ topic: 't', body: 'owned' });
  expect(sent.status).toBe('SEND_OK');
  return { store, msgId: sent.msgId };
}

function expectRefusal(line: string, pid: number | null): void {
  expect(line).toMatch(/^locked STORE_LOCKED /);
  expect(line).toContain(dir);
  if (pid !== null) expect(line).toContain(`pid ${pid}`);
}

async function refusedHere(addons: boolean): Promise<PocketMQError> {
  const err = await MessageStore.open(dir, addonOptions(addons)).then(() => null, (e) => e);
  expect(err).toBeInstanceOf(PocketMQError);
  expect((err as PocketMQError).code).toBe('STORE_LOCKED');
  expect((err as PocketMQError).message).toContain(dir);
  return err as PocketMQError;
}

/** The owner's message is readable beside it, and verify finds nothing wrong. */
async function expectIntact(msgId: string): Promise<void> {
  const ro = await MessageStore.openReadOnly(dir);
  try {
    const found = await ro.viewMessage(msgId);
    expect(found?.body.toString()).toBe('owned');
  } finally {
    await ro.close();
  }
  const report = await verifyStore(dir);
  expect(report.problems).toEqual([]);
  expect(report.records).toBe(1);
}

describe('owner and opener in separate processes', () => {
  it.each(pairs)('$name: refused, owner intact', async ({ owner: ownerAddons, opener }) => {
    const owner = track(childPeer({ dir, role: 'owner', addons: ownerAddons }));
    const msgId = await ready(owner, ownerAddons);
    const line = await track(childPeer({ dir, role: 'opener', addons: opener })).next();
    expectRefusal(line, owner.pid);
    await expectIntact(msgId);
    owner.close();
    expect(await owner.next()).toBe('closed');
  });
});

describe('owner and opener in this process', () => {
  it.each(pairs)('$name: refused, owner intact', async ({ owner: ownerAddons, opener }) => {
    const { store, msgId } = await ownHere(ownerAddons);
    const err = await refusedHere(opener);
    expect(err.message).toContain(`pid ${process.pid}`);
    await expectIntact(msgId);
    const again = await store.createProducer({ group: 'owner' }).send({ topic: 't', body: 'x' });
    expect(again.status).toBe('SEND_OK');
  });

  it('a second copy of pocketmq in the same thread is refused by the socket alone', async () => {
    const { msgId } = await ownHere(true);
    // dist/ is another module instance: it shares no state with lib/ but the kernel's.
    const dist = await import(pathToFileURL(path.join(root, 'dist', 'index.js')).href) as
      { MessageStore: typeof MessageStore };
    const err = await dist.MessageStore.open(dir).then(() => null, (e: unknown) => e);
    expect((err as PocketMQError).code).toBe('STORE_LOCKED');
    expect((err as PocketMQError).message).toContain(`pid ${process.pid}`);
    await expectIntact(msgId);
  });

  it('closing releases at once: a reopen in the same process works', async () => {
    const { store } = await ownHere(true);
    await store.close();
    const reopened = await MessageStore.open(dir, addonOptions(false));
    stores.push(reopened);
    expect(await verifyStore(dir).then((r) => r.problems)).toEqual([]);
  });
});

describe('worker threads', () => {
  it.each([true, false])('owner in the main thread, opener in a worker (addons %s)',
    async (addons) => {
      const { msgId } = await ownHere(true);
      const line = await track(workerPeer({ dir, role: 'opener', addons })).next();
      expectRefusal(line, process.pid);
      await expectIntact(msgId);
    });

  it.each([true, false])('owner in a worker (addons %s), opener in the main thread',
    async (addons) => {
      const owner = track(workerPeer({ dir, role: 'owner', addons }));
      const msgId = await ready(owner, addons);
      await refusedHere(true);
      await expectIntact(msgId);
      owner.close();
      expect(await owner.next()).toBe('closed');
      // Released: this thread can own it now.
      stores.push(await MessageStore.open(dir));
    });

  it('two workers: the second is refused; a store opens in any thread', async () => {
    const owner = track(workerPeer({ dir, role: 'owner', addons: true }));
    const msgId = await ready(owner, true);
    const line = await track(workerPeer({ dir, role: 'opener', addons: true })).next();
    expectRefusal(line, process.pid);
    await expectIntact(msgId);
    owner.close();
    expect(await owner.next()).toBe('closed');
    expect(await track(workerPeer({ dir, role: 'opener', addons: true })).next()).toBe('opened');
  });
});

describe('a killed owner', () => {
  it.each([true, false])('is replaced at once (owner addons %s), nothing deleted',
    async (addons) => {
      const owner = track(childPeer({ dir, role: 'owner', addons }));
      const msgId = await ready(owner, addons);
      await owner.kill();
      const before = fs.readdirSync(dir).sort();
      expect(before).toContain('lock');
      for (const opener of [false, true]) {
        const store = await MessageStore.open(dir, addonOptions(opener));
        expect((await store.viewMessage(msgId))?.body.toString()).toBe('owned');
        await store.close();
      }
      expect(fs.readdirSync(dir).sort()).toEqual(before.filter((f) => f !== 'abort'));
    });
});
