/**
 * STAND-INS, to be replaced: checks pocketmq's embedded store makes with helpers that the public
 * barrel does not export (message normalization, topic and group names, delay levels, option
 * checks). pocketmq/jetstream may use only the public API, so it carries its own copies of those
 * rules here, in one file, written to give the same answers and the same error codes. When the
 * barrel exports them, this file shrinks to re-exports.
 */
import { limits, PocketMQError, type Message, type MessageBody } from '../index.js';

/** Topic names (the embedded store's rule): 1 to 127 of A-Z a-z 0-9 _ % | -. */
const TOPIC_NAME = /^[A-Za-z0-9_%|-]{1,127}$/;
/** Group names: 1 to 120 of A-Z a-z 0-9 _ -, so `%DLQ%<group>` is a topic name. */
const GROUP_NAME = /^[A-Za-z0-9_-]{1,120}$/;
/** Producer and consumer instance names. */
export const INSTANCE_NAME = /^[A-Za-z0-9_.:#-]{1,64}$/;

export const DLQ_PREFIX = '%DLQ%';
export const RETRY_PREFIX = '%RETRY%';
const RESERVED_PREFIXES = [RETRY_PREFIX, DLQ_PREFIX, 'SCHEDULE_TOPIC_', 'RMQ_SYS_'];

/** Property names the embedded store gives meaning to: users cannot set them. */
const RESERVED_PROPERTIES = new Set(('TAGS KEYS UNIQ_KEY DELAY WAIT REAL_TOPIC REAL_QID ' +
  'TRAN_MSG PGROUP RETRY_TOPIC ORIGIN_MESSAGE_ID MAX_RECONSUME_TIMES RECONSUME_TIME ' +
  'TIMER_DELIVER_MS TIMER_DELAY_SEC TIMER_DELAY_MS __transactionId__ ' +
  'CHECK_IMMUNITY_TIME_IN_SECONDS MIN_OFFSET MAX_OFFSET CONSUME_START_TIME ' +
  'TRANSACTION_CHECK_TIMES SHARDING_KEY INNER_NUM INNER_BASE').split(' '));

function shown(value: unknown): string {
  if (typeof value !== 'string') return `a ${value === null ? 'null' : typeof value}`;
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

/** A topic name; `consumable` also lets through `%DLQ%` and `%RETRY%` topics. */
export function checkTopic(topic: unknown, consumable = false): string {
  if (typeof topic !== 'string' || !TOPIC_NAME.test(topic)) {
    throw new PocketMQError('INVALID_TOPIC', `invalid topic ${shown(topic)}: a topic name is ` +
      '1 to 127 of the characters A-Z a-z 0-9 _ % | -',
    typeof topic === 'string' ? { topic } : {});
  }
  const reserved = RESERVED_PREFIXES.find((p) => topic.startsWith(p));
  const allowed = consumable && (reserved === DLQ_PREFIX || reserved === RETRY_PREFIX);
  if (reserved !== undefined && !allowed) {
    throw new PocketMQError('INVALID_TOPIC', `topic ${JSON.stringify(topic)} starts with the ` +
      `reserved prefix ${JSON.stringify(reserved)}: such topics are made by pocketmq only`,
    { topic });
  }
  return topic;
}

export function checkGroup(group: unknown): string {
  if (typeof group !== 'string' || !GROUP_NAME.test(group)) {
    throw new PocketMQError('INVALID_OPTION', `invalid group ${shown(group)}: a group name is ` +
      '1 to 120 of the characters A-Z a-z 0-9 _ -', { property: 'group' });
  }
  return group;
}

/** A message as it goes on the wire: body bytes, keys as a list, properties as strings. */
export interface OutgoingMessage {
  readonly topic: string;
  readonly body: Uint8Array;
  readonly tags: string | undefined;
  readonly keys: readonly string[];
  readonly properties: Readonly<Record<string, string>>;
}

function badMessage(message: string, property: string): PocketMQError {
  return new PocketMQError('INVALID_MESSAGE', message, { property });
}

function bodyBytes(body: MessageBody | undefined): Uint8Array {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8')
    : body instanceof Uint8Array ? body : null;
  if (bytes === null || bytes.length === 0) {
    throw badMessage('body must be a non-empty string, Buffer or Uint8Array', 'body');
  }
  return bytes;
}

function keyList(keys: unknown): string[] {
  if (keys === undefined) return [];
  const list: unknown = typeof keys === 'string' ? [keys] : keys;
  const ok = Array.isArray(list) && list.every((k) => typeof k === 'string' && k !== '' &&
    !/\s/.test(k));
  if (!ok) throw badMessage('keys must be a string or an array of non-empty strings without ' +
    'whitespace', 'keys');
  return [...list as string[]];
}

function propertyStrings(props: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (props === undefined) return out;
  const proto: unknown = props !== null && typeof props === 'object'
    ? Object.getPrototypeOf(props) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw badMessage('properties must be a plain object', 'properties');
  }
  for (const [name, value] of Object.entries(props as object)) {
    if (RESERVED_PROPERTIES.has(name)) throw badMessage(`property name ${name} is reserved`, name);
    const ok = typeof value === 'string' || typeof value === 'boolean' ||
      (typeof value === 'number' && Number.isFinite(value));
    if (!ok) throw badMessage(`property ${name} must be a string, finite number or boolean`, name);
    out[name] = String(value);
  }
  return out;
}

/** Check a message from application code (INVALID_MESSAGE naming the field). */
export function outgoingMessage(message: Message): OutgoingMessage {
  if (message === null || typeof message !== 'object') {
    throw badMessage('a message must be an object with topic and body', 'message');
  }
  if (message.delayTimeLevel !== undefined || message.deliverAt !== undefined) {
    throw new PocketMQError('NOT_SUPPORTED', 'delayed delivery (delayTimeLevel, deliverAt) is ' +
      'not supported on JetStream yet: send the message when it is due',
    { property: message.delayTimeLevel !== undefined ? 'delayTimeLevel' : 'deliverAt' });
  }
  const { tags } = message;
  if (tags !== undefined && (typeof tags !== 'string' || /\s|\|\|/.test(tags))) {
    throw badMessage('tags must be one tag: a string without whitespace or "||"', 'tags');
  }
  return { topic: checkTopic(message.topic), body: bodyBytes(message.body),
    tags: tags === '' ? undefined : tags, keys: keyList(message.keys),
    properties: propertyStrings(message.properties) };
}

/** RocketMQ's `messageDelayLevel` string ('1s 5s 10s ...') as milliseconds per level. */
export function delayLevelsMs(spec: unknown): number[] {
  const unit: Record<string, number> = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 };
  const words = typeof spec === 'string' ? spec.trim().split(/\s+/) : [];
  const levels = words.map((w) => /^(\d{1,9})(ms|s|m|h|d)$/.exec(w))
    .map((m) => m === null ? NaN : Number(m[1]) * unit[m[2]!]!);
  if (levels.length === 0 || levels.length > 64 || levels.some(Number.isNaN)) {
    throw new PocketMQError('INVALID_OPTION', 'option messageDelayLevel must list 1 to 64 ' +
      `delays such as "1s 5s 10s", got ${shown(spec)}`, { property: 'messageDelayLevel' });
  }
  return levels;
}

/** How long redelivery number `reconsumeTimes + 1` waits: level 3 + reconsumeTimes, clamped. */
export function retryDelayMs(levels: readonly number[], reconsumeTimes: number): number {
  return levels[Math.min(levels.length - 1, 2 + Math.max(0, reconsumeTimes))] ?? 0;
}

/** Checks of an options object: each failure names the property (INVALID_OPTION). */
export class OptionReader {
  private readonly o: Record<string, unknown>;

  constructor(options: unknown, private readonly what: string) {
    if (options === null || typeof options !== 'object') {
      throw new PocketMQError('INVALID_OPTION', `${what} must be an object`, { property: what });
    }
    this.o = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  }

  static bad(property: string, message: string): PocketMQError {
    return new PocketMQError('INVALID_OPTION', `option ${property} ${message}`, { property });
  }

  /** Refuse keys not in `known`; `why` may explain a key that belongs elsewhere. */
  only(known: readonly string[], why: (key: string) => string | null = () => null): void {
    for (const key of Object.keys(this.o)) {
      if (!known.includes(key)) throw OptionReader.bad(key, why(key) ?? `is not ${this.what}`);
    }
  }

  raw(key: string): unknown {
    return this.o[key];
  }

  int(key: string, fallback: number, min: number, max: number): number {
    const v = this.o[key] ?? fallback;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
      throw OptionReader.bad(key, `must be an integer in [${min}, ${max}], got ${String(v)}`);
    }
    return v as number;
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.o[key] ?? fallback;
    if (typeof v !== 'boolean') throw OptionReader.bad(key, `must be a boolean, got ${String(v)}`);
    return v;
  }

  oneOf<T extends string>(key: string, fallback: T, values: readonly T[]): T {
    const v = this.o[key] ?? fallback;
    if (!values.includes(v as T)) {
      throw OptionReader.bad(key, `must be one of ${values.join(', ')}, got ${String(v)}`);
    }
    return v as T;
  }

  matching(key: string, fallback: string, pattern: RegExp): string {
    const v = this.o[key] ?? fallback;
    if (typeof v !== 'string' || !pattern.test(v)) {
      throw OptionReader.bad(key, `must match ${pattern.source}, got ${shown(v)}`);
    }
    return v;
  }

  fn<T>(key: string): T | null {
    const v = this.o[key];
    if (v === undefined) return null;
    if (typeof v !== 'function') throw OptionReader.bad(key, 'must be a function');
    return v as T;
  }
}

/** The largest body the embedded store takes: also the ceiling here. */
export const MAX_BODY_BYTES = limits.maxBodyBytes;
