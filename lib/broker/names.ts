/**
 * Names of topics and groups (docs/format.md): the patterns they must match, the prefixes reserved
 * for topics the broker makes itself (retry, dead letter, delay, system), and the names of a
 * group's retry and dead-letter topics. Topic names become directory names under
 * `consumequeue/`, so the pattern is what keeps a name from escaping the data directory.
 */
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';

/** Letters, digits, `_`, `%`, `|` and `-`; 1 to 127 characters (limits.maxTopicBytes). */
export const TOPIC_PATTERN = /^[A-Za-z0-9_%|-]{1,127}$/;
/** Letters, digits, `_` and `-`; 1 to 120 characters, so `%RETRY%<group>` is a valid topic. */
export const GROUP_PATTERN = /^[A-Za-z0-9_-]{1,120}$/;
/** Producer and consumer instance names (they name clients in traces and in their group). */
export const INSTANCE_NAME_PATTERN = /^[A-Za-z0-9_.:#-]{1,64}$/;

export const RETRY_TOPIC_PREFIX = '%RETRY%';
export const DLQ_TOPIC_PREFIX = '%DLQ%';
export const SCHEDULE_TOPIC_PREFIX = 'SCHEDULE_TOPIC_';
export const SYSTEM_TOPIC_PREFIX = 'RMQ_SYS_';

/** Prefixes of topics only the broker creates; users may not send to them. */
export const RESERVED_TOPIC_PREFIXES: readonly string[] = Object.freeze([
  RETRY_TOPIC_PREFIX, DLQ_TOPIC_PREFIX, SCHEDULE_TOPIC_PREFIX, SYSTEM_TOPIC_PREFIX,
]);

const TOPIC_RULE = 'a topic name is 1 to 127 of the characters A-Z a-z 0-9 _ % | -';
const GROUP_RULE = 'a group name is 1 to 120 of the characters A-Z a-z 0-9 _ -';

/**
 * What was given where a name was expected, for a message: a string quoted (cut at 40
 * characters, so a huge or multi-line value is not echoed back), else what it is.
 */
function describe(what: string, value: unknown): string {
  if (value === undefined) return `${what} is missing`;
  if (typeof value !== 'string') {
    return `invalid ${what}: got ${value === null ? 'null' : `a ${typeof value}`}`;
  }
  const shown = value.length > 40 ? `${value.slice(0, 40)}...` : value;
  return `invalid ${what} ${JSON.stringify(shown)} (${value.length} characters)`;
}

/** Any valid topic name, reserved or not. Throws INVALID_TOPIC naming the rule. */
export function checkTopicName(topic: unknown): string {
  if (typeof topic !== 'string' || !TOPIC_PATTERN.test(topic)) {
    const fields = typeof topic === 'string' ? { topic } : {};
    throw new PocketMQError('INVALID_TOPIC', `${describe('topic', topic)}: ${TOPIC_RULE}`,
      fields);
  }
  return topic;
}

/** User topic names known to pass checkUserTopic. */
const validUserTopics = new Set<string>();
const VALID_TOPIC_CACHE_SIZE = limits.topicNameCacheEntries;

/** The reserved prefix `topic` starts with, or null. */
function reservedPrefixOf(topic: string): string | null {
  return RESERVED_TOPIC_PREFIXES.find((prefix) => topic.startsWith(prefix)) ?? null;
}

/**
 * A topic a user may send to: valid, and not starting with a reserved prefix. Throws
 * INVALID_TOPIC naming the rule or the prefix.
 */
export function checkUserTopic(topic: unknown): string {
  // Every send checks its topic: remember the names that passed (a bounded set).
  if (typeof topic === 'string' && validUserTopics.has(topic)) return topic;
  const name = checkTopicName(topic);
  const prefix = reservedPrefixOf(name);
  if (prefix !== null) {
    throw new PocketMQError('INVALID_TOPIC',
      `topic ${JSON.stringify(name)} starts with the reserved prefix ${JSON.stringify(prefix)}: ` +
      `topics starting with ${RESERVED_TOPIC_PREFIXES.join(', ')} are made by the broker only`,
      { topic: name });
  }
  if (validUserTopics.size >= VALID_TOPIC_CACHE_SIZE) validUserTopics.clear();
  validUserTopics.add(name);
  return name;
}

/** True for a topic the broker makes itself (retry, dead letter, delay, system). */
export function isSystemTopic(topic: string): boolean {
  return reservedPrefixOf(topic) !== null;
}

/** A valid producer or consumer group name. Throws INVALID_OPTION with property 'group'. */
export function checkGroupName(group: unknown): string {
  if (typeof group !== 'string' || !GROUP_PATTERN.test(group)) {
    throw new PocketMQError('INVALID_OPTION', `${describe('group', group)}: ${GROUP_RULE}`,
      { property: 'group' });
  }
  return group;
}

/** `%RETRY%<group>`: where a consumer group's messages wait to be consumed again. */
export function retryTopic(group: string): string {
  return RETRY_TOPIC_PREFIX + checkGroupName(group);
}

/** `%DLQ%<group>`: where a consumer group's messages go after their last retry. */
export function dlqTopic(group: string): string {
  return DLQ_TOPIC_PREFIX + checkGroupName(group);
}
