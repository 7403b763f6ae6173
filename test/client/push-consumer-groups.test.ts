/**
 * Push consumers in a group. CLUSTERING: instances split the queues (disjoint, covering), every
 * message goes to one of them exactly once when every call succeeds, a leaving instance's
 * queues move to the others at once (driven by membership events, not a timer: the clock here
 * never moves) without losing or repeating a message, and the allocation strategy is
 * selectable. BROADCASTING: every instance gets every message.
 */
import { describe, expect, it } from 'vitest';
import {
  allocateAveragely, allocateAveragelyByCircle, allocateConsistentHash, type MessageQueue,
} from '../../lib/client/allocate.js';
import type { BrokerPort } from '../../lib/broker/port.js';
import type { PushConsumer } from '../../lib/client/push-consumer.js';
import { Rebalancer, type RebalanceHost } from '../../lib/client/rebalance.js';
import { ManualClock } from '../../lib/store/clock.js';
import { useTempDirs } from '../support/backends.js';
import {
  counts, Gate, mqKey, openStore, Recorder, sendMany, settle, startPush, until,
} from '../support/messaging.js';

const tmp = useTempDirs();
const TOPIC = 't';
const QUEUES = 8;

/** Both assignments are disjoint and together cover every queue of the topic. */
function splitSettled(consumers: readonly PushConsumer[]): boolean {
  const keys = consumers.flatMap((c) => c.assignment().map(mqKey));
  return keys.length === QUEUES && new Set(keys).size === QUEUES;
}

function expectEachOnce(bodies: readonly string[], n: number): void {
  const seen = counts(bodies);
  expect(seen.size).toBe(n);
  for (let i = 0; i < n; i++) expect(seen.get(`m${i}`), `m${i}`).toBe(1);
}

describe('CLUSTERING', () => {
  it('two instances share the queues and each message goes to one of them once', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic(TOPIC, { queueNums: QUEUES });
      const a = new Recorder();
      const b = new Recorder();
      const ca = await startPush(store, { group: 'g' }, TOPIC, a.listener);
      const cb = await startPush(store, { group: 'g' }, TOPIC, b.listener);
      expect(ca.clientId).not.toBe(cb.clientId);
      await until(() => splitSettled([ca, cb]), 'the split of 8 queues');
      expect(ca.assignment()).toHaveLength(4);
      expect(cb.assignment()).toHaveLength(4);
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, TOPIC, 400);
      await until(() => a.messages.length + b.messages.length >= 400, '400 deliveries');
      await settle();
      expect(a.messages.length).toBeGreaterThan(0);
      expect(b.messages.length).toBeGreaterThan(0);
      const owned = (c: PushConsumer): Set<string> => new Set(c.assignment().map(mqKey));
      for (const m of a.messages) expect(owned(ca).has(mqKey(m))).toBe(true);
      for (const m of b.messages) expect(owned(cb).has(mqKey(m))).toBe(true);
      expectEachOnce([...a.bodies, ...b.bodies], 400);
    } finally {
      await store.close();
    }
  });

  it('a leaving instance hands its queues over at once, losing and repeating nothing',
    async () => {
      const store = await openStore(tmp.make(), { clock: new ManualClock() });
      try {
        await store.createTopic(TOPIC, { queueNums: QUEUES });
        const gate = new Gate();
        const a = new Recorder();
        // b is slow: it is mid-way through calls when it shuts down.
        const b = new Recorder(async () => {
          await gate.promise;
          return 'CONSUME_SUCCESS';
        });
        const ca = await startPush(store, { group: 'g' }, TOPIC, a.listener);
        const cb = await startPush(store, { group: 'g', consumeThreadMax: 4 }, TOPIC, b.listener);
        await until(() => splitSettled([ca, cb]), 'the split');
        const producer = store.createProducer({ group: 'pg' });
        await sendMany(producer, TOPIC, 300);
        await until(() => b.inFlight === 4, 'b busy');
        const stopping = cb.shutdown();
        let stopped = false;
        void stopping.then(() => {
          stopped = true;
        });
        await settle();
        expect(stopped).toBe(false); // shutdown waits for b's calls in flight
        gate.open();
        await stopping;
        expect(b.inFlight).toBe(0);
        await until(() => ca.assignment().length === QUEUES, 'a owning every queue');
        await sendMany(producer, TOPIC, 100, (i) => ({ body: `m${300 + i}` }));
        await until(() => a.messages.length + b.messages.length >= 400, '400 deliveries');
        await settle();
        expect(b.messages.length).toBeGreaterThanOrEqual(4);
        expectEachOnce([...a.bodies, ...b.bodies], 400);
      } finally {
        await store.close();
      }
    });

  it('a second instance started after the first consumed takes queues without a skip',
    async () => {
      const store = await openStore(tmp.make(), { clock: new ManualClock() });
      try {
        await store.createTopic(TOPIC, { queueNums: QUEUES });
        const producer = store.createProducer({ group: 'pg' });
        const a = new Recorder();
        const b = new Recorder();
        const ca = await startPush(store, { group: 'g' }, TOPIC, a.listener);
        await sendMany(producer, TOPIC, 100);
        await until(() => a.messages.length === 100, 'a consumed 100');
        // b would start from the last offset as a new group; the group's offsets rule instead.
        const cb = await startPush(store, { group: 'g' }, TOPIC, b.listener);
        await until(() => splitSettled([ca, cb]), 'the split');
        await sendMany(producer, TOPIC, 100, (i) => ({ body: `m${100 + i}` }));
        await until(() => a.messages.length + b.messages.length >= 200, '200 deliveries');
        await settle();
        expect(b.messages.length).toBeGreaterThan(0);
        expectEachOnce([...a.bodies, ...b.bodies], 200);
      } finally {
        await store.close();
      }
    });

  it('an instance joining mid-backlog takes queues over; nothing lost or repeated', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic(TOPIC, { queueNums: QUEUES });
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, TOPIC, 800);
      const slow = async (): Promise<string> => {
        await settle(1);
        return 'CONSUME_SUCCESS';
      };
      const a = new Recorder(slow);
      const b = new Recorder(slow);
      const ca = await startPush(store, { group: 'g', consumeThreadMax: 8,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' }, TOPIC, a.listener);
      await until(() => a.messages.length >= 100, 'a under way');
      const cb = await startPush(store, { group: 'g', consumeThreadMax: 8 }, TOPIC, b.listener);
      await until(() => a.messages.length + b.messages.length >= 800, '800 deliveries');
      await settle();
      expect(a.messages.length).toBeLessThan(800);
      expect(b.messages.length).toBeGreaterThan(0);
      expect(splitSettled([ca, cb])).toBe(true);
      expectEachOnce([...a.bodies, ...b.bodies], 800);
    } finally {
      await store.close();
    }
  });

  it.each([
    ['AVG', allocateAveragely],
    ['AVG_BY_CIRCLE', allocateAveragelyByCircle],
    ['CONSISTENT_HASH', allocateConsistentHash()],
  ] as const)('allocateStrategy %s splits as the strategy says', async (name, strategy) => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic(TOPIC, { queueNums: QUEUES });
      const recs = [new Recorder(), new Recorder(), new Recorder()];
      const ids = ['c1', 'c2', 'c3'];
      const consumers: PushConsumer[] = [];
      for (const [i, rec] of recs.entries()) {
        consumers.push(await startPush(store, { group: 'g', allocateStrategy: name,
          instanceName: ids[i] }, TOPIC, rec.listener));
      }
      await until(() => splitSettled(consumers), 'the split of 8 queues among 3');
      const queues: MessageQueue[] = [...Array(QUEUES).keys()].map((queueId) =>
        ({ topic: TOPIC, queueId }));
      for (const [i, c] of consumers.entries()) {
        const expected = strategy('g', ids[i]!, queues, ids).map(mqKey).sort();
        expect(c.assignment().map(mqKey).sort(), `${name} ${ids[i]}`).toEqual(expected);
      }
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, TOPIC, 80);
      await until(() => recs.reduce((n, r) => n + r.messages.length, 0) >= 80, '80 deliveries');
      expectEachOnce(recs.flatMap((r) => r.bodies), 80);
    } finally {
      await store.close();
    }
  });

  it('AVG and AVG_BY_CIRCLE give different splits (the option is not ignored)', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic(TOPIC, { queueNums: QUEUES });
      const split = async (group: string, name: 'AVG' | 'AVG_BY_CIRCLE'): Promise<string[]> => {
        const c1 = await startPush(store, { group, allocateStrategy: name, instanceName: 'x1' },
          TOPIC, () => 'CONSUME_SUCCESS');
        const c2 = await startPush(store, { group, allocateStrategy: name, instanceName: 'x2' },
          TOPIC, () => 'CONSUME_SUCCESS');
        await until(() => splitSettled([c1, c2]), `${name} split`);
        return c1.assignment().map(mqKey).sort();
      };
      expect(await split('ga', 'AVG')).toEqual(['t/0', 't/1', 't/2', 't/3']);
      expect(await split('gc', 'AVG_BY_CIRCLE')).toEqual(['t/0', 't/2', 't/4', 't/6']);
    } finally {
      await store.close();
    }
  });
});

describe('BROADCASTING', () => {
  it('every instance receives every message', async () => {
    const store = await openStore(tmp.make(), { clock: new ManualClock() });
    try {
      await store.createTopic(TOPIC, { queueNums: 4 });
      const a = new Recorder();
      const b = new Recorder();
      const opts = { group: 'bg', messageModel: 'BROADCASTING' } as const;
      const ca = await startPush(store, opts, TOPIC, a.listener);
      const cb = await startPush(store, opts, TOPIC, b.listener);
      expect(ca.assignment()).toHaveLength(4);
      expect(cb.assignment()).toHaveLength(4);
      const producer = store.createProducer({ group: 'pg' });
      await sendMany(producer, TOPIC, 60);
      await until(() => a.messages.length >= 60 && b.messages.length >= 60, 'both get 60');
      await settle();
      expectEachOnce(a.bodies, 60);
      expectEachOnce(b.bodies, 60);
    } finally {
      await store.close();
    }
  });

  it('each instance keeps its own offsets across close and reopen', async () => {
    const dir = tmp.make();
    const opts = (instanceName: string) =>
      ({ group: 'bg', messageModel: 'BROADCASTING', instanceName }) as const;
    let store = await openStore(dir, { clock: new ManualClock() });
    try {
      await store.createTopic(TOPIC, { queueNums: 2 });
      const one = new Recorder();
      await startPush(store, opts('one'), TOPIC, one.listener);
      await sendMany(store.createProducer({ group: 'pg' }), TOPIC, 10);
      await until(() => one.messages.length === 10, 'one gets 10');
    } finally {
      await store.close();
    }
    store = await openStore(dir, { clock: new ManualClock() });
    try {
      const one = new Recorder();
      const two = new Recorder();
      await startPush(store, opts('one'), TOPIC, one.listener);
      await startPush(store, opts('two'), TOPIC, two.listener); // new: from the last offset
      await sendMany(store.createProducer({ group: 'pg' }), TOPIC, 4, (i) =>
        ({ body: `m${10 + i}` }));
      await until(() => one.messages.length >= 4 && two.messages.length >= 4, 'both get 4');
      await settle();
      expect(one.bodies.sort()).toEqual(['m10', 'm11', 'm12', 'm13']);
      expect(two.bodies.sort()).toEqual(['m10', 'm11', 'm12', 'm13']);
    } finally {
      await store.close();
    }
  });

  it('one group cannot mix CLUSTERING and BROADCASTING instances', async () => {
    const store = await openStore(tmp.make());
    try {
      await startPush(store, { group: 'mix' }, TOPIC, () => 'CONSUME_SUCCESS');
      await expect(startPush(store, { group: 'mix', messageModel: 'BROADCASTING' }, TOPIC,
        () => 'CONSUME_SUCCESS')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    } finally {
      await store.close();
    }
  });
});

describe('Rebalancer', () => {
  it('a change reported at any moment of a run is never lost', async () => {
    // A group whose membership flips at a chosen microtask after a run assigned its queues:
    // whenever the change lands, the instance ends up owning what the new membership says.
    for (let depth = 0; depth < 12; depth++) {
      let members = ['me'];
      const owned = new Set<string>();
      let rebalancer: Rebalancer | null = null;
      let armed = true;
      const later = (n: number, fn: () => void): void => {
        if (n === 0) fn();
        else queueMicrotask(() => later(n - 1, fn));
      };
      const host: RebalanceHost = {
        port: {
          clientIds: () => [...members],
          topic: () => ({ topic: TOPIC, queueNums: 4 }),
        } as unknown as BrokerPort,
        group: 'g', clientId: () => 'me', messageModel: 'CLUSTERING',
        allocate: allocateAveragely, subscribedTopics: () => [TOPIC],
        addQueue: async (mq) => {
          owned.add(mqKey(mq));
          if (armed) {
            armed = false;
            later(depth, () => {
              members = ['me', 'other'];
              rebalancer!.trigger();
            });
          }
        },
        removeQueue: (mq) => {
          owned.delete(mqKey(mq));
          return Promise.resolve();
        },
        onError: (err) => {
          throw err;
        },
      };
      rebalancer = new Rebalancer(host);
      rebalancer.trigger();
      await until(() => !armed, 'the first run');
      await settle(2);
      await rebalancer.idle();
      expect([...owned].sort(), `change ${depth} microtasks after the run`)
        .toEqual(['t/0', 't/1']);
    }
  });
});
