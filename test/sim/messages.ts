/**
 * What the simulator sends: messages derived from the run's PRNG, each carrying its id in the
 * user property `sim` (and at the start of its body), so a message read back names the send it
 * came from and can be compared field by field with what was sent.
 */
import type { Message } from '../../lib/broker/message.js';
import type { MessageExt } from '../../lib/broker/message.js';

/** The simulated topics and their queue counts. */
export const SIM_TOPICS: readonly { topic: string; queues: number }[] = [
  { topic: 'SimOrders', queues: 3 },
  { topic: 'SimAudit', queues: 2 },
];

/** Pull consumer groups: each has its own offsets. */
export const SIM_GROUPS: readonly string[] = ['sim_group', 'sim_audit', 'sim_replay'];
export const ID_PROPERTY = 'sim';

export interface QueueRef {
  readonly topic: string;
  readonly queueId: number;
}

export interface SimMessage extends QueueRef {
  readonly id: number;
  readonly body: Buffer;
  readonly tags: string | undefined;
  readonly keys: readonly string[];
  readonly properties: Readonly<Record<string, string>>;
}

export type Random = () => number;

export function pick<T>(random: Random, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)]!;
}

export function int(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

export function queueName(q: QueueRef): string {
  return `${q.topic}/${q.queueId}`;
}

export function allQueues(): QueueRef[] {
  return SIM_TOPICS.flatMap(({ topic, queues }) =>
    Array.from({ length: queues }, (_, queueId) => ({ topic, queueId })));
}

/** A body of 1 byte to ~6 KiB (over 4 KiB the producer compresses it). */
function bodyOf(random: Random, id: number): Buffer {
  const r = random();
  const length = r < 0.05 ? 1 : r < 0.9 ? int(random, 8, 600) : int(random, 4000, 6000);
  const body = Buffer.alloc(length);
  const head = Buffer.from(`sim${id};`);
  head.copy(body, 0, 0, Math.min(head.length, length));
  const repetitive = random() < 0.5;
  for (let i = head.length; i < length; i++) {
    body[i] = repetitive ? 0x61 + ((i * 7) % 13) : Math.floor(random() * 256);
  }
  return body;
}

export function makeMessage(random: Random, id: number, q: QueueRef): SimMessage {
  const tags = random() < 0.2 ? undefined : pick(random, ['TagA', 'TagB', 'TagC']);
  const keyCount = random() < 0.5 ? 0 : int(random, 1, 3);
  const keys = Array.from({ length: keyCount }, (_, i) => `k${id}_${i}`);
  const properties: Record<string, string> = { [ID_PROPERTY]: String(id) };
  if (random() < 0.4) properties.region = pick(random, ['eu', 'us', 'ap', '\u65e5\u672c']);
  if (random() < 0.2) properties.amount = String(int(random, 0, 1_000_000));
  return { ...q, id, body: bodyOf(random, id), tags, keys, properties };
}

export function toMessage(m: SimMessage): Message {
  return { topic: m.topic, body: m.body, tags: m.tags,
    keys: m.keys.length > 0 ? [...m.keys] : undefined, properties: { ...m.properties } };
}

/** The id a stored message carries, or -1. */
export function idOf(ext: MessageExt): number {
  const raw = ext.properties[ID_PROPERTY];
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : -1;
}

/** Why `ext` is not the message `want` was sent as, or null when it is. */
export function difference(ext: MessageExt, want: SimMessage): string | null {
  if (ext.topic !== want.topic || ext.queueId !== want.queueId) {
    return `is in ${ext.topic}/${ext.queueId}, sent to ${queueName(want)}`;
  }
  if (!ext.body.equals(want.body)) return `body differs (${ext.body.length} bytes, sent ` +
    `${want.body.length})`;
  if (ext.tags !== want.tags) return `tags ${String(ext.tags)}, sent ${String(want.tags)}`;
  if (JSON.stringify(ext.keys) !== JSON.stringify(want.keys)) {
    return `keys ${JSON.stringify(ext.keys)}, sent ${JSON.stringify(want.keys)}`;
  }
  const got = JSON.stringify(Object.entries(ext.properties).sort());
  const sent = JSON.stringify(Object.entries(want.properties).sort());
  return got === sent ? null : `properties ${got}, sent ${sent}`;
}
