/**
 * Messages on JetStream: what a pocketmq message becomes on the wire and back.
 *
 * A topic is a stream named after it; its queues are the subjects `<topic>.<queueId>`. A `%` in
 * a topic name (as in `%DLQ%<group>`) is written `~` in stream names and subjects: NATS 2.9
 * formats some subjects with printf, which mangles `%`, and `~` is in no topic name. The body
 * is the NATS payload, unchanged. The rest travels in headers, ASCII only (JSON with every
 * non-ASCII character escaped), so any tag, key or property survives:
 *
 *   Nats-Msg-Id       the producer's id for this send: retries of it are stored once
 *   Pmq-Tags          the tag, as a JSON string
 *   Pmq-Keys          the keys, as a JSON array
 *   Pmq-Props         the user properties, as a JSON object
 *   Pmq-Born          when the producer sent it (ms since the epoch)
 *   Pmq-Origin-Id     dead letters only: the msgId of the message it copies
 *   Pmq-Origin-Topic  dead letters only: the topic it was sent to
 *   Pmq-Reconsume     dead letters only: its reconsumeTimes when it died
 *
 * A message id is `<topic>@<stream sequence>`: made by the stream (the sequence a quorum
 * agreed on), the same on every redelivery, and enough to fetch the message back
 * (`viewMessage`). A dead letter keeps the id of the message it copies, as in the embedded store.
 * `queueOffset` and `commitLogOffset` are the stream sequence too: increasing within a queue,
 * though not consecutive (the queues of a topic share one sequence).
 */
import type { MsgHdrs } from '@nats-io/transport-node';
import type { MessageExt } from '../index.js';
import type { OutgoingMessage } from './public-gaps.js';

export const HEADER = Object.freeze({
  msgId: 'Nats-Msg-Id',
  tags: 'Pmq-Tags',
  keys: 'Pmq-Keys',
  props: 'Pmq-Props',
  born: 'Pmq-Born',
  originId: 'Pmq-Origin-Id',
  originTopic: 'Pmq-Origin-Topic',
  reconsume: 'Pmq-Reconsume',
});

/** Bytes a header block costs on top of its names and values (NATS/1.0 line, CRLFs). */
const HEADER_BLOCK_BYTES = 16;

/** The stream of a topic. */
export function streamOf(topic: string): string {
  return topic.replaceAll('%', '~');
}

/** The topic of a stream. */
export function topicOf(stream: string): string {
  return stream.replaceAll('~', '%');
}

/** The subject of queue `queueId` of `topic`. */
export function queueSubject(topic: string, queueId: number): string {
  return `${streamOf(topic)}.${queueId}`;
}

/** The queue id of a subject `<topic>.<queueId>`, or -1. */
export function queueIdOf(subject: string): number {
  const dot = subject.lastIndexOf('.');
  const id = Number(subject.slice(dot + 1));
  return dot > 0 && Number.isInteger(id) && id >= 0 ? id : -1;
}

export function messageId(topic: string, sequence: number): string {
  return `${topic}@${sequence}`;
}

/** The stream and sequence of a message id, or null when it is not one. */
export function parseMessageId(msgId: unknown): { topic: string; sequence: number } | null {
  if (typeof msgId !== 'string') return null;
  const m = /^([A-Za-z0-9_%|-]{1,127})@([1-9]\d{0,15})$/.exec(msgId);
  if (m === null || !Number.isSafeInteger(Number(m[2]))) return null;
  return { topic: m[1]!, sequence: Number(m[2]) };
}

/** JSON with every character outside printable ASCII escaped: safe in a header value. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Extra fields a dead-letter copy carries. */
export interface Origin {
  readonly msgId: string;
  readonly topic: string;
  readonly reconsumeTimes: number;
}

/** Headers of a message; `into` is an empty header set from the NATS client. */
export function encodeHeaders(into: MsgHdrs, message: OutgoingMessage, bornMs: number,
  origin?: Origin): MsgHdrs {
  if (message.tags !== undefined) into.set(HEADER.tags, asciiJson(message.tags));
  if (message.keys.length > 0) into.set(HEADER.keys, asciiJson(message.keys));
  if (Object.keys(message.properties).length > 0) {
    into.set(HEADER.props, asciiJson({ ...message.properties }));
  }
  into.set(HEADER.born, String(bornMs));
  if (origin !== undefined) {
    into.set(HEADER.originId, origin.msgId);
    into.set(HEADER.originTopic, origin.topic);
    into.set(HEADER.reconsume, String(origin.reconsumeTimes));
  }
  return into;
}

/** Bytes the headers take on the wire, to check a message against the server's max_payload. */
export function headerBytes(headers: MsgHdrs): number {
  let bytes = HEADER_BLOCK_BYTES;
  for (const [name, values] of headers) {
    for (const v of values) bytes += name.length + v.length + 4;
  }
  return bytes;
}

function parsed<T>(text: string, fallback: T): T {
  if (text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

/** What a stored message looks like, whether delivered to a consumer or fetched by sequence. */
export interface StoredMessage {
  readonly subject: string;
  readonly topic: string;
  readonly sequence: number;
  readonly headers: MsgHdrs | undefined;
  readonly data: Uint8Array;
  readonly storeTimestamp: number;
  /** Deliveries to this consumer before this one (0 when not delivered by a consumer). */
  readonly redeliveries: number;
}

/** The application's view of a stored message. */
export function toMessageExt(stored: StoredMessage): MessageExt {
  const h = stored.headers;
  const get = (name: string): string => h?.get(name) ?? '';
  const originId = get(HEADER.originId);
  const props = parsed<Record<string, unknown>>(get(HEADER.props), {});
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(props)) {
    if (typeof value === 'string') {
      Object.defineProperty(properties, name, { value, enumerable: true, writable: true,
        configurable: true });
    }
  }
  const tags = parsed<unknown>(get(HEADER.tags), undefined);
  const keys = parsed<unknown>(get(HEADER.keys), []);
  const born = Number(get(HEADER.born));
  // A copy: the payload is a view of the socket's read buffer, which it would keep alive.
  const body = Buffer.from(stored.data);
  return {
    topic: stored.topic,
    tags: typeof tags === 'string' ? tags : undefined,
    keys: Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [],
    body,
    properties,
    msgId: originId !== '' ? originId : messageId(stored.topic, stored.sequence),
    queueId: Math.max(0, queueIdOf(stored.subject)),
    queueOffset: stored.sequence,
    commitLogOffset: stored.sequence,
    storeSize: body.length + (h === undefined ? 0 : headerBytes(h)),
    bornTimestamp: born > 0 ? born : stored.storeTimestamp,
    storeTimestamp: stored.storeTimestamp,
    reconsumeTimes: (Number(get(HEADER.reconsume)) || 0) + stored.redeliveries,
  };
}

/** The message as it was sent, to copy it (a dead letter) with its tags, keys, properties. */
export function outgoingOf(message: MessageExt): OutgoingMessage {
  return { topic: message.topic, body: message.body, tags: message.tags, keys: message.keys,
    properties: message.properties };
}
