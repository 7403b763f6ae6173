/**
 * The topic table: which topics exist and how many queues each has (RocketMQ's
 * TopicConfigManager), kept in `<dataDir>/config/topics.json`.
 *
 * File content (`data` inside the JsonConfigFile framing), topics sorted by name:
 *
 *   {"topics":[{"topic":"orders","queueNums":4}, ...]}
 *
 * The store's own directories are the other source of truth: after a crash the file may lag
 * behind topics that were auto-created and written to, so `load` merges what the store holds.
 *
 * Persistence: every change bumps a change counter, and the whole table is written in the
 * background, once for all changes made in one synchronous run (a microtask later; writes are
 * serialized and coalesced by JsonConfigFile). A background write that fails is logged through
 * `logger.error` and is never an unhandled rejection; the table stays dirty and the next change
 * or `flush()` writes it again. `flush()` and `create()` resolve only once the table as it was
 * when they were called is durable, and reject with the write's error otherwise (the change stays
 * in memory and is written by the next successful save).
 *
 * Names are validated by callers (user vs system topics, names.ts); this module only checks that
 * a name is a valid topic name at all, since it becomes a directory name.
 */
import path from 'node:path';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { IoBackend } from '../store/io/backend.js';
import type { Logger } from '../store/options.js';
import { JsonConfigFile, PersistTracker } from './config-file.js';
import { checkTopicName } from './names.js';
import type { TopicConfig } from './port.js';

export const TOPIC_CONFIG_FILE_NAME = 'topics.json';
/** Topics one store may hold; creating one more is LIMIT_EXCEEDED. */
export const MAX_TOPICS = 65_536;

export type { TopicConfig } from './port.js';

export interface TopicConfigManagerOptions {
  readonly backend: IoBackend;
  /** `<dataDir>/config`. */
  readonly configDir: string;
  /** Queues of a topic made by `getOrCreate` or found only in the store. */
  readonly defaultQueueNums: number;
  readonly logger?: Logger;
}

/** A topic the store already holds, with the queue ids it has directories for. */
export interface StoreTopic {
  readonly topic: string;
  readonly queueIds: readonly number[];
}

const silentLogger: Logger = Object.freeze({
  debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined,
});

function isQueueNums(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 1 && (n as number) <= limits.maxQueuesPerTopic;
}

function invalidQueueNums(property: string, actual: unknown): PocketMQError {
  return new PocketMQError('INVALID_OPTION',
    `${property} must be an integer from 1 to ${limits.maxQueuesPerTopic}, got ` +
    `${JSON.stringify(actual) ?? String(actual)}`,
    { property, limit: limits.maxQueuesPerTopic,
      ...(typeof actual === 'number' ? { actual } : {}) });
}

/** Check the file's `data`; throws on anything but a valid, duplicate-free table. */
function parseTopics(raw: unknown): TopicConfig[] {
  const topics = (raw as { topics?: unknown } | null)?.topics;
  if (!Array.isArray(topics)) throw new Error('expected {"topics": [...]}');
  const seen = new Set<string>();
  return topics.map((entry: unknown, i) => {
    const { topic, queueNums } = (entry ?? {}) as Record<string, unknown>;
    const name = checkTopicName(topic);
    if (!isQueueNums(queueNums)) {
      throw new Error(`topics[${i}] (${name}): queueNums must be an integer from 1 to ` +
        `${limits.maxQueuesPerTopic}, got ${JSON.stringify(queueNums)}`);
    }
    if (seen.has(name)) throw new Error(`topic ${name} is listed twice`);
    seen.add(name);
    return Object.freeze({ topic: name, queueNums });
  });
}

export class TopicConfigManager {
  private readonly file: JsonConfigFile<{ topics: TopicConfig[] }>;
  private readonly defaultQueueNums: number;
  private readonly logger: Logger;
  private readonly table = new Map<string, TopicConfig>();
  /** Changes made so far, and how many of them are durable. */
  private readonly tracker = new PersistTracker();
  private saveQueued = false;

  constructor(options: TopicConfigManagerOptions) {
    if (!isQueueNums(options.defaultQueueNums)) {
      throw invalidQueueNums('defaultQueueNums', options.defaultQueueNums);
    }
    this.defaultQueueNums = options.defaultQueueNums;
    this.logger = options.logger ?? silentLogger;
    this.file = new JsonConfigFile({
      backend: options.backend,
      path: path.join(options.configDir, TOPIC_CONFIG_FILE_NAME),
      parse: (raw) => ({ topics: parseTopics(raw) }),
      name: 'topic config',
    });
  }

  /**
   * Read config/topics.json (CORRUPT_DATA when it is damaged), then merge the topics the store
   * holds: one missing from the file gets max(largest queueId + 1, defaultQueueNums) queues, one
   * with fewer queues than the store has grows to cover them. A merge is persisted in the
   * background.
   */
  load(storeTopics: readonly StoreTopic[]): void {
    const stored = this.file.load()?.topics ?? [];
    this.table.clear();
    for (const config of stored) this.table.set(config.topic, config);
    const merged: string[] = [];
    for (const { topic, queueIds } of storeTopics) {
      const name = checkTopicName(topic);
      const needed = queueIds.reduce((n, id) => Math.max(n, checkStoreQueueId(name, id) + 1), 0);
      const known = this.table.get(name);
      if (known !== undefined && known.queueNums >= needed) continue;
      const queueNums = known === undefined ? Math.max(needed, this.defaultQueueNums) : needed;
      this.table.set(name, Object.freeze({ topic: name, queueNums }));
      merged.push(`${name} (${queueNums} queues)`);
    }
    if (merged.length === 0) return;
    this.logger.info(`topic config: merged from the store: ${merged.join(', ')}`);
    this.changed();
  }

  get(topic: string): TopicConfig | undefined {
    return this.table.get(topic);
  }

  /** The topic's config, auto-creating it with defaultQueueNums (persisted in the background). */
  getOrCreate(topic: string): TopicConfig {
    const known = this.table.get(topic);
    if (known !== undefined) return known;
    const name = checkTopicName(topic);
    this.checkRoomForOneMore();
    const config = Object.freeze({ topic: name, queueNums: this.defaultQueueNums });
    this.table.set(name, config);
    this.changed();
    return config;
  }

  /**
   * Create a topic with `queueNums` queues (an integer from 1 to limits.maxQueuesPerTopic), or grow
   * an existing one; shrinking is INVALID_OPTION. Resolves once the table is durable.
   */
  async create(topic: string, queueNums: number): Promise<TopicConfig> {
    const name = checkTopicName(topic);
    if (!isQueueNums(queueNums)) throw invalidQueueNums('queueNums', queueNums);
    const known = this.table.get(name);
    if (known !== undefined && queueNums < known.queueNums) {
      throw new PocketMQError('INVALID_OPTION',
        `topic ${name} has ${known.queueNums} queues; a topic may grow but not shrink ` +
        `(asked for ${queueNums})`, { property: 'queueNums', topic: name, actual: queueNums });
    }
    if (known === undefined) this.checkRoomForOneMore();
    if (known === undefined || queueNums > known.queueNums) {
      this.table.set(name, Object.freeze({ topic: name, queueNums }));
      this.changed();
    }
    await this.flush();
    return this.table.get(name)!;
  }

  /**
   * A follower: merge its master's topics.json (`bytes`): topics it lacks are added, topics with
   * fewer queues grow. Returns the topics that changed (persisted in the background).
   */
  applyReplicated(bytes: Buffer): string[] {
    const changed: string[] = [];
    for (const config of this.file.decode(bytes).topics) {
      const known = this.table.get(config.topic);
      if (known !== undefined && known.queueNums >= config.queueNums) continue;
      if (known === undefined && this.table.size >= MAX_TOPICS) break;
      this.table.set(config.topic, config);
      changed.push(config.topic);
    }
    if (changed.length > 0) this.changed();
    return changed;
  }

  /** Every topic, sorted by name. */
  list(): TopicConfig[] {
    return [...this.table.values()].sort((a, b) => compare(a.topic, b.topic));
  }

  /** Resolves when every change so far is durable; rejects with the write's error otherwise. */
  flush(): Promise<void> {
    return this.tracker.persist(() => this.file.save({ topics: this.list() }));
  }

  /** Count a change and save in the background, once for all changes of this turn. */
  private changed(): void {
    this.tracker.changed();
    if (this.saveQueued) return;
    this.saveQueued = true;
    queueMicrotask(() => {
      this.saveQueued = false;
      this.flush().catch((err: unknown) => {
        const detail = err instanceof Error ? err.message : String(err);
        this.logger.error(`topic config: background save failed, will retry on the next change ` +
          `or flush: ${detail}`);
      });
    });
  }

  private checkRoomForOneMore(): void {
    if (this.table.size >= MAX_TOPICS) {
      throw new PocketMQError('LIMIT_EXCEEDED',
        `a store holds at most ${MAX_TOPICS} topics`, { limit: MAX_TOPICS,
        actual: this.table.size + 1 });
    }
  }
}

function checkStoreQueueId(topic: string, queueId: number): number {
  if (!Number.isInteger(queueId) || queueId < 0 || queueId >= limits.maxQueuesPerTopic) {
    throw new PocketMQError('CORRUPT_DATA',
      `the store holds queue ${queueId} of topic ${topic}; queue ids run from 0 to ` +
      `${limits.maxQueuesPerTopic - 1}`, { topic });
  }
  return queueId;
}

/** Code-unit order: the same on every machine and locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
