import { describe, expect, it } from 'vitest';
import {
  allocateAveragely, allocateAveragelyByCircle, allocateConsistentHash, allocateStrategies,
  type AllocateStrategy, type MessageQueue,
} from '../../lib/client/allocate.js';
import { PocketMQError } from '../../lib/errors.js';

function queuesOf(topic: string, count: number): MessageQueue[] {
  return Array.from({ length: count }, (_, queueId) => ({ topic, queueId }));
}

function clientsOf(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `client-${String(i).padStart(2, '0')}`);
}

/** Every client's share, in clientIds order. */
function layout(strategy: AllocateStrategy, queues: readonly MessageQueue[],
  clients: readonly string[]): number[][] {
  return clients.map((c) => strategy('cg', c, queues, clients).map((q) => q.queueId));
}

/** A seeded shuffle, so inputs arrive in a different order on every "instance". */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const strategies: [string, AllocateStrategy][] = [
  ['AVG', allocateStrategies.AVG],
  ['AVG_BY_CIRCLE', allocateStrategies.AVG_BY_CIRCLE],
  ['CONSISTENT_HASH', allocateStrategies.CONSISTENT_HASH],
  ['CONSISTENT_HASH(3)', allocateConsistentHash(3)],
];

describe.each(strategies)('%s', (_name, strategy) => {
  it('assigns every queue to exactly one client, whatever the input order', () => {
    for (let queueCount = 0; queueCount <= 20; queueCount++) {
      for (let clientCount = 1; clientCount <= 12; clientCount++) {
        const queues = [...queuesOf('a', queueCount), ...queuesOf('b', 2)];
        const clients = clientsOf(clientCount);
        const owners = new Map<string, string[]>();
        clients.forEach((client, i) => {
          const mine = strategy('cg', client, shuffled(queues, i + 1), shuffled(clients, i + 7));
          for (const q of mine) {
            const key = `${q.topic}:${q.queueId}`;
            owners.set(key, [...(owners.get(key) ?? []), client]);
          }
        });
        expect(owners.size).toBe(queues.length);
        for (const holders of owners.values()) expect(holders).toHaveLength(1);
      }
    }
  });

  it('gives nothing to a client that is not in the list', () => {
    expect(strategy('cg', 'stranger', queuesOf('t', 8), clientsOf(3))).toEqual([]);
    expect(strategy('cg', 'client-00', [], clientsOf(3))).toEqual([]);
  });

  it('leaves some clients without queues when they outnumber the queues', () => {
    const shares = layout(strategy, queuesOf('t', 3), clientsOf(5));
    expect(shares.flat().sort()).toEqual([0, 1, 2]);
    expect(shares.filter((s) => s.length === 0).length).toBeGreaterThanOrEqual(2);
  });

  it('ignores duplicate queues and client ids', () => {
    const queues = queuesOf('t', 4);
    const clients = clientsOf(2);
    const doubled = [...clients, clients[0]!];
    const shares = clients.map((c) => strategy('cg', c, [...queues, ...queues], doubled));
    expect(shares).toEqual(layout(strategy, queues, clients).map((ids) =>
      ids.map((queueId) => ({ topic: 't', queueId }))));
  });
});

describe('allocateAveragely', () => {
  it('gives contiguous ranges, one extra to the first (queues % clients) clients', () => {
    expect(layout(allocateAveragely, queuesOf('t', 8), clientsOf(3)))
      .toEqual([[0, 1, 2], [3, 4, 5], [6, 7]]);
    expect(layout(allocateAveragely, queuesOf('t', 10), clientsOf(4)))
      .toEqual([[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]);
    expect(layout(allocateAveragely, queuesOf('t', 4), clientsOf(4))).toEqual([[0], [1], [2], [3]]);
    expect(layout(allocateAveragely, queuesOf('t', 2), clientsOf(3))).toEqual([[0], [1], []]);
  });

  it('sorts queues by topic then queueId, and clients lexicographically', () => {
    const queues = [{ topic: 'b', queueId: 0 }, { topic: 'a', queueId: 10 },
      { topic: 'a', queueId: 2 }, { topic: 'b', queueId: 1 }];
    const got = allocateAveragely('cg', 'x', queues, ['y', 'x']);
    expect(got).toEqual([{ topic: 'a', queueId: 2 }, { topic: 'a', queueId: 10 }]);
  });
});

describe('allocateAveragelyByCircle', () => {
  it('deals queues round robin', () => {
    expect(layout(allocateAveragelyByCircle, queuesOf('t', 8), clientsOf(3)))
      .toEqual([[0, 3, 6], [1, 4, 7], [2, 5]]);
    expect(layout(allocateAveragelyByCircle, queuesOf('t', 2), clientsOf(3)))
      .toEqual([[0], [1], []]);
  });
});

describe('allocateConsistentHash', () => {
  it('moves only the queues of a client that leaves', () => {
    const strategy = allocateConsistentHash();
    const queues = [...queuesOf('orders', 64), ...queuesOf('payments', 64)];
    const before = clientsOf(8);
    const after = before.filter((c) => c !== 'client-03');
    const ownerBefore = new Map<string, string>();
    for (const c of before) {
      for (const q of strategy('cg', c, queues, before)) {
        ownerBefore.set(`${q.topic}:${q.queueId}`, c);
      }
    }
    let moved = 0;
    for (const c of after) {
      for (const q of strategy('cg', c, queues, after)) {
        const was = ownerBefore.get(`${q.topic}:${q.queueId}`);
        if (was !== c) {
          expect(was).toBe('client-03');
          moved += 1;
        }
      }
    }
    expect(moved).toBe([...ownerBefore.values()].filter((c) => c === 'client-03').length);
    expect(moved).toBeLessThan(queues.length / 4);
    // The averagely strategy, by contrast, reshuffles most queues.
    const avgMoved = queues.filter((q) => {
      const owner = (clients: string[]): string | undefined => clients.find((c) =>
        allocateAveragely('cg', c, queues, clients).some((m) => m === q));
      return owner(before) !== owner(after);
    }).length;
    expect(avgMoved).toBeGreaterThan(moved);
  });

  it('spreads queues over every client with enough virtual nodes', () => {
    const shares = layout(allocateConsistentHash(), queuesOf('t', 256), clientsOf(4));
    for (const share of shares) expect(share.length).toBeGreaterThan(20);
  });

  it('refuses a bad virtualNodes count', () => {
    for (const bad of [0, -1, 1.5, 1025]) {
      try {
        allocateConsistentHash(bad);
        throw new Error('expected INVALID_OPTION');
      } catch (err) {
        expect(err).toBeInstanceOf(PocketMQError);
        expect((err as PocketMQError).code).toBe('INVALID_OPTION');
        expect((err as PocketMQError).property).toBe('virtualNodes');
      }
    }
  });
});
