/**
 * The store conformance suite (STYLE habit 14): the same contract on the mmap backend, the
 * plain-file backend and the simulated disk, with both flush types.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { limits } from '../lib/limits.js';
import { ManualClock } from '../lib/store/clock.js';
import { StoreEngine, type PutResult } from '../lib/store/store-engine.js';
import type { FlushDiskType, StoreOptions } from '../lib/store/options.js';
import type { RecordInput } from '../lib/store/record-codec.js';
import type { StoredRecord } from '../lib/store/record-decoder.js';
import { backendCases, nextTurn, SpyBackend, useTempDirs } from './support/backends.js';

const SEG = 64 * 1024;
const SYNC_TIMEOUT_MS = 1000;
const tmp = useTempDirs();
const flushTypes: FlushDiskType[] = ['ASYNC_FLUSH', 'SYNC_FLUSH'];
const cases = backendCases.flatMap((b) => flushTypes.map((flush) => ({ ...b, flush })));

function msg(i: number, patch: Partial<RecordInput> = {}): RecordInput {
  return {
    topic: 'Orders', queueId: i % 2, body: Buffer.from(`body ${i} \u00e9\u{1F600}`),
    tags: `tag${i % 3}`, keys: [`key-${i}`, 'shared'], uniqKey: `uniq-${i}`,
    properties: { n: String(i), '\u65e5': '\u672c', ['__proto__']: 'p' }, ...patch,
  };
}

/** Every byte value, and a body spanning several pages. */
const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const large = Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 31) & 0xff));

function expectSame(rec: StoredRecord, input: RecordInput, put: PutResult): void {
  expect(Buffer.compare(rec.body, Buffer.from(input.body))).toBe(0);
  expect([rec.topic, rec.queueId, rec.tags, rec.keys, rec.uniqKey]).toEqual([input.topic,
    input.queueId, input.tags, input.keys ?? [], input.uniqKey]);
  for (const [k, v] of Object.entries(input.properties ?? {})) expect(rec.properties[k]).toBe(v);
  expect([rec.queueOffset, rec.physicalOffset, rec.storeTimestamp, rec.checksum])
    .toEqual([put.queueOffset, put.physicalOffset, put.storeTimestamp, put.checksum]);
}

describe.each(cases)('StoreEngine on the $kind backend, $flush', ({ make, flush }) => {
  const opened: StoreEngine[] = [];
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  });

  function setup(): {
    dir: string; spy: SpyBackend; clock: ManualClock;
    open(extra?: StoreOptions): Promise<StoreEngine>;
  } {
    const dir = tmp.make();
    const spy = new SpyBackend(make());
    // The machine's own disk use must not decide a test: report a nearly empty disk.
    spy.usedRatio = 0.1;
    const clock = new ManualClock();
    const open = async (extra: StoreOptions = {}): Promise<StoreEngine> => {
      const store = await StoreEngine.open(dir, {
        backend: spy, clock, flushDiskType: flush, syncFlushTimeoutMs: SYNC_TIMEOUT_MS,
        commitLogSegmentSize: SEG, consumeQueueEntriesPerFile: 64, indexHashSlots: 64,
        indexMaxEntries: 64, flushIntervalMs: 3_600_000, flushConsumeQueueIntervalMs: 3_600_000,
        cleanResourceIntervalMs: 86_400_000, ...extra,
      });
      opened.push(store);
      return store;
    };
    return { dir, spy, clock, open };
  }

  it('gives back what was put, byte for byte', async () => {
    const { open } = setup();
    const store = await open();
    const inputs = [msg(0), msg(2, { body: binary }), msg(4, { body: large, tags: undefined,
      keys: undefined, uniqKey: undefined, properties: undefined })];
    const puts: PutResult[] = [];
    for (const input of inputs) puts.push(await store.putMessage(input));
    expect(puts.map((p) => [p.status, p.queueOffset])).toEqual([['PUT_OK', 0], ['PUT_OK', 1],
      ['PUT_OK', 2]]);
    const got = store.getMessage('Orders', 0, 0, 32);
    expect([got.status, got.nextBeginOffset, got.minOffset, got.maxOffset])
      .toEqual(['FOUND', 3, 0, 3]);
    got.records.forEach((rec, i) => expectSame(rec, inputs[i]!, puts[i]!));
    const zeroCopy = store.getMessage('Orders', 0, 1, 1, true);
    expect(Buffer.compare(zeroCopy.records[0]!.body, binary)).toBe(0);
    expectSame(store.lookMessageByOffset(puts[2]!.physicalOffset)!, inputs[2]!, puts[2]!);
    expect(store.getMessage('Orders', 0, 3, 1).status).toBe('OFFSET_OVERFLOW_ONE');
    expect(store.getMessage('Orders', 0, 9, 1).status).toBe('OFFSET_OVERFLOW_BADLY');
    expect(store.getMessage('Orders', 1, 0, 1).status).toBe('NO_MATCHED_LOGIC_QUEUE');
  });

  it('closes only once a segment allocation in flight has ended, then unlocks', async () => {
    const { open, spy, dir } = setup();
    const store = await open();
    const opensBefore = spy.opens.length;
    const release = spy.holdOpens();
    for (let i = 0; i < 60; i++) await store.putMessage(msg(i)); // past 1/16 of a segment
    expect(spy.opens.length).toBeGreaterThan(opensBefore); // the next segment's, held
    const end = store.commitLogMaxOffset;
    let closed = false;
    const closing = store.close().then(() => { closed = true; });
    // Removing `abort` is the last step of a close before its files are released.
    while (spy.exists(path.join(dir, 'abort'))) await nextTurn();
    for (let i = 0; i < 5; i++) await nextTurn();
    expect(closed).toBe(false);
    release();
    await closing;
    const again = await open(); // the lock was released
    expect(again.commitLogMaxOffset).toBe(end);
  });

  it('stores a batch with consecutive offsets, or nothing at all', async () => {
    const { open } = setup();
    const store = await open();
    await store.putMessage(msg(0));
    const before = [store.commitLogMaxOffset, store.getMaxOffsetInQueue('Orders', 0)];
    const bad = [msg(2), msg(4, { body: Buffer.alloc(0) }), msg(6)];
    await expect(store.putMessages(bad)).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    await expect(store.putMessages([msg(2), msg(3)]))
      .rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    await expect(store.putMessages([msg(2), msg(4, { topic: 'bad topic' })]))
      .rejects.toMatchObject({ code: 'INVALID_TOPIC' });
    await expect(store.putMessages([])).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    expect([store.commitLogMaxOffset, store.getMaxOffsetInQueue('Orders', 0)]).toEqual(before);
    const batch = await store.putMessages([msg(2), msg(4), msg(6)]);
    expect(batch.map((r) => [r.status, r.queueOffset])).toEqual([['PUT_OK', 1], ['PUT_OK', 2],
      ['PUT_OK', 3]]);
    for (let i = 1; i < 3; i++) {
      expect(batch[i]!.physicalOffset).toBe(batch[i - 1]!.physicalOffset + batch[i - 1]!.size);
    }
    expect(store.getMessage('Orders', 0, 1, 10).records.map((r) => r.body.toString()))
      .toEqual([2, 4, 6].map((i) => msg(i).body.toString()));
    // Every record of a batch is indexed by its keys, as one sent alone is.
    for (const i of [2, 4, 6]) {
      expect(store.queryMessage('Orders', `key-${i}`).map((r) => r.physicalOffset))
        .toEqual([batch[(i - 2) / 2]!.physicalOffset]);
      expect(store.queryMessage('Orders', `uniq-${i}`)).toHaveLength(1);
    }
  });

  it('finds records by key and unique key within a time range', async () => {
    const { open, clock } = setup();
    const store = await open();
    const t0 = clock.now();
    for (let i = 0; i < 6; i++) {
      await store.putMessage(msg(i));
      clock.advance(10_000);
    }
    await store.putMessage(msg(9, { topic: 'Other', keys: ['shared'] }));
    const bodies = (recs: StoredRecord[]): string[] => recs.map((r) => r.body.toString());
    expect(bodies(store.queryMessage('Orders', 'key-3'))).toEqual([msg(3).body.toString()]);
    expect(bodies(store.queryMessage('Orders', 'uniq-4'))).toEqual([msg(4).body.toString()]);
    expect(store.queryMessage('Orders', 'shared')).toHaveLength(6);
    expect(store.queryMessage('Orders', 'shared', 2)).toHaveLength(2);
    expect(store.queryMessage('Other', 'shared')).toHaveLength(1);
    expect(store.queryMessage('Orders', 'missing')).toEqual([]);
    const window = store.queryMessage('Orders', 'shared', 32, t0 + 20_000, t0 + 40_000);
    expect(window.map((r) => r.storeTimestamp).sort())
      .toEqual([t0 + 20_000, t0 + 30_000, t0 + 40_000]);
    expect(store.queryMessage('Orders', 'key-1', 32, t0 + 20_000, t0 + 40_000)).toEqual([]);
  });

  it('finds the first queue offset stored at or after a time', async () => {
    const { open, clock } = setup();
    const store = await open();
    const t0 = clock.now();
    for (let i = 0; i < 10; i++) {
      await store.putMessage(msg(0, { queueId: 1 }));
      clock.advance(1000);
    }
    expect(store.getOffsetInQueueByTime('Orders', 1, t0 - 1)).toBe(0);
    expect(store.getOffsetInQueueByTime('Orders', 1, t0)).toBe(0);
    expect(store.getOffsetInQueueByTime('Orders', 1, t0 + 1)).toBe(1);
    expect(store.getOffsetInQueueByTime('Orders', 1, t0 + 4500)).toBe(5);
    expect(store.getOffsetInQueueByTime('Orders', 1, t0 + 9000)).toBe(9);
    expect(store.getOffsetInQueueByTime('Orders', 1, t0 + 60_000)).toBe(10);
  });

  it('tells listeners which queues grew, after the append, with the new max offset', async () => {
    const { open } = setup();
    const store = await open();
    const calls: [string, number, number][] = [];
    const off = store.onMessageArrived((...args) => calls.push(args));
    const puts = [store.putMessage(msg(0)), store.putMessage(msg(1)), store.putMessage(msg(2))];
    expect(calls).toEqual([]);
    await Promise.all(puts);
    await nextTurn();
    expect(calls.sort()).toEqual([['Orders', 0, 2], ['Orders', 1, 1]]);
    await store.putMessage(msg(3));
    await nextTurn();
    expect(calls.at(-1)).toEqual(['Orders', 1, 2]);
    expect(calls).toHaveLength(3);
    off();
    await store.putMessage(msg(5));
    await nextTurn();
    expect(calls).toHaveLength(3);
  });

  it('resolves PUT_OK, and the flushed offset covers the record once durable', async () => {
    const { open } = setup();
    const store = await open();
    const put = await store.putMessage(msg(0));
    expect(put.status).toBe('PUT_OK');
    const end = put.physicalOffset + put.size;
    if (flush === 'SYNC_FLUSH') expect(store.commitLogFlushedOffset).toBeGreaterThanOrEqual(end);
    await store.flushed();
    expect(store.commitLogFlushedOffset).toBeGreaterThanOrEqual(end);
    const batch = await store.putMessages([msg(2), msg(4)]);
    const batchEnd = batch[1]!.physicalOffset + batch[1]!.size;
    if (flush === 'SYNC_FLUSH') {
      expect(store.commitLogFlushedOffset).toBeGreaterThanOrEqual(batchEnd);
    }
  });

  it('reports FLUSH_DISK_TIMEOUT when the disk is slower than the deadline, storing anyway',
    async () => {
      const { open, spy, clock } = setup();
      const store = await open();
      const release = spy.holdFlushes();
      const pending = store.putMessage(msg(0));
      let status: string | undefined;
      void pending.then((r) => { status = r.status; });
      await nextTurn();
      await nextTurn();
      if (flush === 'ASYNC_FLUSH') {
        // ASYNC_FLUSH never waits for the disk.
        expect(status).toBe('PUT_OK');
      } else {
        expect(status).toBeUndefined();
        clock.advance(SYNC_TIMEOUT_MS - 1);
        await nextTurn();
        expect(status).toBeUndefined();
        clock.advance(1);
        await nextTurn();
        expect(status).toBe('FLUSH_DISK_TIMEOUT');
      }
      const put = await pending;
      expect(store.getMessage('Orders', 0, 0, 1).records[0]!.body).toEqual(msg(0).body);
      release();
      await store.flushed();
      expect(store.commitLogFlushedOffset).toBeGreaterThanOrEqual(put.physicalOffset + put.size);
      expect((await store.putMessage(msg(2))).status).toBe('PUT_OK');
    });

  it('closes idempotently and refuses use after close with STORE_CLOSED', async () => {
    const { open } = setup();
    const store = await open();
    await store.putMessage(msg(0));
    const first = store.close();
    expect(store.close()).toBe(first);
    await first;
    await store.close();
    expect(store.isOpen).toBe(false);
    const closed = { code: 'STORE_CLOSED' };
    await expect(store.putMessage(msg(1))).rejects.toMatchObject(closed);
    await expect(store.putMessages([msg(1)])).rejects.toMatchObject(closed);
    await expect(store.flushed()).rejects.toMatchObject(closed);
    expect(() => store.getMessage('Orders', 0, 0, 1)).toThrow(expect.objectContaining(closed));
    expect(() => store.queryMessage('Orders', 'shared')).toThrow(expect.objectContaining(closed));
    expect(() => store.getMaxOffsetInQueue('Orders', 0)).toThrow(expect.objectContaining(closed));
    expect(() => store.getOffsetInQueueByTime('Orders', 0, 0))
      .toThrow(expect.objectContaining(closed));
  });

  it('refuses a second open of the same directory while it is open', async () => {
    const { open } = setup();
    const store = await open();
    await expect(open()).rejects.toMatchObject({ code: 'STORE_LOCKED' });
    const put = await store.putMessage(msg(0));
    expect(store.lookMessageByOffset(put.physicalOffset)!.body).toEqual(msg(0).body);
    await store.close();
    const again = await open();
    expect(again.getMaxOffsetInQueue('Orders', 0)).toBe(1);
    await again.close();
    await (await open()).close();
  });

  it('reopens after close with everything in it, and goes on from there', async () => {
    const { open } = setup();
    let store = await open();
    const inputs = Array.from({ length: 30 }, (_, i) => msg(i, { body: Buffer.alloc(5000, i) }));
    const puts: PutResult[] = [];
    for (const input of inputs) puts.push(await store.putMessage(input));
    expect(store.storage.commitLog.queue.files.length).toBeGreaterThanOrEqual(3);
    const maxOffset = store.commitLogMaxOffset;
    await store.close();
    store = await open();
    expect(store.commitLogMaxOffset).toBe(maxOffset);
    expect(store.recovery?.tornTail).toBe(false);
    for (const q of [0, 1]) {
      const got = store.getMessage('Orders', q, 0, 100);
      expect([got.status, got.minOffset, got.maxOffset]).toEqual(['FOUND', 0, 15]);
      got.records.forEach((rec, k) => expectSame(rec, inputs[2 * k + q]!, puts[2 * k + q]!));
    }
    expect(store.queryMessage('Orders', 'uniq-17').map((r) => r.physicalOffset))
      .toEqual([puts[17]!.physicalOffset]);
    expect(store.topics()).toEqual([{ topic: 'Orders', queueIds: [0, 1] }]);
    const next = await store.putMessage(msg(30));
    expect([next.queueOffset, next.physicalOffset]).toEqual([15, maxOffset]);
    await store.close();
    store = await open();
    expect(store.getMaxOffsetInQueue('Orders', 0)).toBe(16);
  });
});

describe('batch limits', () => {
  it('refuses a batch over limits.maxBatchBytes with MESSAGE_TOO_LARGE, storing nothing',
    async () => {
      const store = await StoreEngine.open(tmp.make(), { backend: 'file' });
      try {
        const body = Buffer.alloc(3.5 * 2 ** 20, 1);
        const batch = Array.from({ length: 5 }, () => ({ topic: 'T', queueId: 0, body }));
        await expect(store.putMessages(batch)).rejects.toMatchObject({
          code: 'MESSAGE_TOO_LARGE', limit: limits.maxBatchBytes });
        expect([store.commitLogMaxOffset, store.getMaxOffsetInQueue('T', 0)]).toEqual([0, 0]);
        const ok = await store.putMessages(batch.slice(0, 4));
        expect(ok.map((r) => r.queueOffset)).toEqual([0, 1, 2, 3]);
      } finally {
        await store.close();
      }
    });
});

describe('observability', () => {
  it('publishes each commit-log flush on the pocketmq:flush diagnostics channel', async () => {
    const { subscribe, unsubscribe } = await import('node:diagnostics_channel');
    const seen: { log: string; fromOffset: number; toOffset: number; durationMs: number }[] = [];
    const onMessage = (m: unknown): void => {
      seen.push(m as (typeof seen)[number]);
    };
    subscribe('pocketmq:flush', onMessage);
    const store = await StoreEngine.open(tmp.make(), { flushDiskType: 'SYNC_FLUSH' });
    try {
      const r = await store.putMessage({ topic: 'T', queueId: 0, body: Buffer.from('x') });
      const mine = seen.filter((m) => m.toOffset >= r.physicalOffset + r.size);
      expect(mine.length).toBeGreaterThan(0);
      expect(mine[0]!.log).toBe('commitlog');
      expect(mine[0]!.durationMs).toBeGreaterThanOrEqual(0);
    } finally {
      await store.close();
      unsubscribe('pocketmq:flush', onMessage);
    }
  });
});
