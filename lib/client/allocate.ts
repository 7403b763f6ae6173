/**
 * Queue allocation for clustering consumers (RocketMQ's AllocateMessageQueueStrategy): which of a
 * topic's queues one consumer instance of a group takes, given every instance of the group.
 *
 * Pure functions. Each one sorts and de-duplicates its inputs itself (queues by topic then
 * queueId, client ids in code-unit order), so every instance that sees the same sets computes the
 * same split, and together they assign every queue to exactly one instance. An instance not among
 * `clientIds` gets no queue.
 */
import type * as Crypto from 'node:crypto';
import { lazyBuiltin } from '../builtins.js';
import { PocketMQError } from '../errors.js';
import type { MessageQueue } from '../broker/port.js';

export type { MessageQueue } from '../broker/port.js';

/** node:crypto, loaded on the first digest (consistent hashing, a broadcasting consumer's key). */
const crypto = lazyBuiltin<typeof Crypto>('node:crypto');

/** The `algorithm` digest of `data` (UTF-8). */
export function digest(algorithm: string, data: string): Buffer {
  return crypto().createHash(algorithm).update(data, 'utf8').digest();
}

export type AllocateStrategy = (
  consumerGroup: string,
  currentClientId: string,
  queues: readonly MessageQueue[],
  clientIds: readonly string[],
) => MessageQueue[];

/** Virtual nodes per client on the consistent-hash ring, by default (RocketMQ uses 10). */
export const DEFAULT_VIRTUAL_NODES = 10;
/** Most virtual nodes per client the ring accepts. */
export const MAX_VIRTUAL_NODES = 1024;

/** Code-unit order: the same on every machine and locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Queues sorted by topic, then queueId, without duplicates. */
function sortQueues(queues: readonly MessageQueue[]): MessageQueue[] {
  const sorted = [...queues].sort((a, b) => compare(a.topic, b.topic) || a.queueId - b.queueId);
  return sorted.filter((q, i) => {
    const prev = sorted[i - 1];
    return prev === undefined || prev.topic !== q.topic || prev.queueId !== q.queueId;
  });
}

function sortClients(clientIds: readonly string[]): string[] {
  return [...new Set(clientIds)].sort(compare);
}

/**
 * RocketMQ's AllocateMessageQueueAveragely: client i of n takes a contiguous range; the first
 * (queues % clients) clients take one queue more. 8 queues, 3 clients: [0-2], [3-5], [6-7].
 */
export const allocateAveragely: AllocateStrategy = (_group, currentClientId, queues, clientIds) => {
  const clients = sortClients(clientIds);
  const index = clients.indexOf(currentClientId);
  if (index < 0) return [];
  const all = sortQueues(queues);
  const mod = all.length % clients.length;
  const base = Math.floor(all.length / clients.length);
  const size = all.length <= clients.length ? 1 : base + (index < mod ? 1 : 0);
  const start = index < mod ? index * size : index * size + mod;
  return all.slice(start, start + size);
};

/** RocketMQ's AllocateMessageQueueAveragelyByCircle: queue i goes to client i % clients. */
export const allocateAveragelyByCircle: AllocateStrategy =
  (_group, currentClientId, queues, clientIds) => {
    const clients = sortClients(clientIds);
    const index = clients.indexOf(currentClientId);
    if (index < 0) return [];
    return sortQueues(queues).filter((_q, i) => i % clients.length === index);
  };

/** First 4 bytes of the MD5 digest as an unsigned 32-bit number (RocketMQ's MD5Hash). */
function ringHash(key: string): number {
  return digest('md5', key).readUInt32BE(0);
}

interface RingNode {
  readonly hash: number;
  readonly clientId: string;
}

/**
 * RocketMQ's AllocateMessageQueueConsistentHash: every client puts `virtualNodes` points on a
 * ring (MD5 of `<clientId>-<i>`); a queue (MD5 of `<topic>@<queueId>`) goes to the first point at
 * or after its own hash, wrapping around. When a client joins or leaves, only the queues on its
 * arcs move.
 */
export function allocateConsistentHash(virtualNodes = DEFAULT_VIRTUAL_NODES): AllocateStrategy {
  if (!Number.isInteger(virtualNodes) || virtualNodes < 1 || virtualNodes > MAX_VIRTUAL_NODES) {
    throw new PocketMQError('INVALID_OPTION', `virtualNodes must be an integer from 1 to ` +
      `${MAX_VIRTUAL_NODES}, got ${String(virtualNodes)}`,
      { property: 'virtualNodes', limit: MAX_VIRTUAL_NODES });
  }
  return (_group, currentClientId, queues, clientIds) => {
    const clients = sortClients(clientIds);
    if (!clients.includes(currentClientId)) return [];
    const ring: RingNode[] = [];
    for (const clientId of clients) {
      for (let i = 0; i < virtualNodes; i++) {
        ring.push({ hash: ringHash(`${clientId}-${i}`), clientId });
      }
    }
    // Ties (equal hashes) are broken by client id so every instance builds the same ring.
    ring.sort((a, b) => a.hash - b.hash || compare(a.clientId, b.clientId));
    return sortQueues(queues).filter((q) => {
      const node = ring[firstAtOrAfter(ring, ringHash(`${q.topic}@${q.queueId}`))] ?? ring[0];
      return node?.clientId === currentClientId;
    });
  };
}

/** Index of the first node whose hash is >= `hash` (ring.length when there is none). */
function firstAtOrAfter(ring: readonly RingNode[], hash: number): number {
  let lo = 0;
  let hi = ring.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ring[mid]!.hash < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The strategies by RocketMQ's names, for a consumer's `allocateMessageQueueStrategy` option. */
export const allocateStrategies = Object.freeze({
  AVG: allocateAveragely,
  AVG_BY_CIRCLE: allocateAveragelyByCircle,
  CONSISTENT_HASH: allocateConsistentHash(),
});
