/**
 * Consumer offsets: per consumer group, topic and queue, the next queue offset the group will
 * consume (RocketMQ's ConsumerOffsetManager), kept in `<dataDir>/config/consumerOffset.json`.
 *
 * File content (`data` inside the JsonConfigFile framing):
 *
 *   {"offsets":{"<group>":{"<topic>":{"<queueId>":{"offset":42,"lastCommitMs":1700000000000}}}}}
 *
 * `commit` changes memory only; `persist` writes the whole table when it changed (atomically,
 * serialized, coalesced), and `start` runs it every `persistIntervalMs` on the injected clock. So
 * a crash loses at most the commits since the last persist (those messages are delivered again:
 * at least once), and never leaves a torn file.
 *
 * A timed persist that fails is logged through `logger.error`; the table stays dirty and the next
 * run, `persist()` or `stop()` writes it again.
 */
import path from 'node:path';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { Clock, TimerHandle } from '../store/clock.js';
import type { IoBackend } from '../store/io/backend.js';
import type { Logger } from '../store/options.js';
import { JsonConfigFile, MAX_CONFIG_FILE_BYTES, PersistTracker } from './config-file.js';
import { checkGroupName, checkTopicName } from './names.js';

export const CONSUMER_OFFSET_FILE_NAME = 'consumerOffset.json';
export const DEFAULT_OFFSET_PERSIST_INTERVAL_MS = 5000;
/** (group, topic, queue) entries held at once; committing one more is LIMIT_EXCEEDED. */
export const MAX_OFFSET_ENTRIES = 100_000;
/** Upper bound of one entry in the file when its group and topic are not shared with others. */
const MAX_ENTRY_JSON_BYTES = 512;
if (MAX_OFFSET_ENTRIES * MAX_ENTRY_JSON_BYTES > MAX_CONFIG_FILE_BYTES) {
  throw new Error('consumer-offsets: a full offset table must fit in one config file');
}

export interface QueueOffset {
  topic: string;
  queueId: number;
  offset: number;
  lastCommitMs: number;
}

export interface ConsumerOffsetManagerOptions {
  readonly backend: IoBackend;
  /** `<dataDir>/config`. */
  readonly configDir: string;
  readonly clock: Clock;
  /** @default 5000 */
  readonly persistIntervalMs?: number;
  readonly logger?: Logger;
  /**
   * Runs after the offsets to write are taken and before they are written: the broker flushes
   * the commit log here, so no offset on disk points past a message that is not on disk.
   */
  readonly beforePersist?: () => Promise<void>;
  /** Runs before the offsets to write are taken: consumers hand over what they hold back. */
  readonly beforeSnapshot?: () => void;
}

interface Entry {
  readonly offset: number;
  readonly lastCommitMs: number;
}

/** group -> topic -> queueId -> entry. */
type Table = Map<string, Map<string, Map<number, Entry>>>;

/**
 * An Entry as a commit makes it, one for every acknowledgement: an instance of a class, not an
 * object literal, which V8 may decide to allocate in the old generation (see StoredMessage in
 * message.ts).
 */
class Committed implements Entry {
  constructor(readonly offset: number, readonly lastCommitMs: number) {}
}
type FileData = Record<string, Record<string, Record<string, Entry>>>;

const silentLogger: Logger = Object.freeze({
  debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined,
});

function isOffset(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

function isQueueId(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 0 && (n as number) < limits.maxQueuesPerTopic;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class ConsumerOffsetManager {
  private readonly file: JsonConfigFile<Table>;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly logger: Logger;
  private table: Table = new Map();
  private entries = 0;
  private readonly tracker = new PersistTracker();
  private timer: TimerHandle | null = null;
  private started = false;
  private readonly beforePersist: (() => Promise<void>) | null;
  private readonly beforeSnapshot: () => void;

  constructor(options: ConsumerOffsetManagerOptions) {
    const interval = options.persistIntervalMs ?? DEFAULT_OFFSET_PERSIST_INTERVAL_MS;
    if (!Number.isSafeInteger(interval) || interval < 1) {
      throw new PocketMQError('INVALID_OPTION',
        `persistIntervalMs must be a positive integer of milliseconds, got ${String(interval)}`,
        { property: 'persistIntervalMs' });
    }
    this.intervalMs = interval;
    this.clock = options.clock;
    this.logger = options.logger ?? silentLogger;
    this.beforePersist = options.beforePersist ?? null;
    this.beforeSnapshot = options.beforeSnapshot ?? (() => undefined);
    this.file = new JsonConfigFile<Table>({
      backend: options.backend,
      path: path.join(options.configDir, CONSUMER_OFFSET_FILE_NAME),
      parse: parseOffsets,
      name: 'consumer offsets',
      serialize: tableToJson,
    });
  }

  /** Read config/consumerOffset.json, replacing what is in memory; CORRUPT_DATA if damaged. */
  load(): void {
    const table = this.file.load() ?? new Map();
    let entries = 0;
    for (const topics of table.values()) {
      for (const queues of topics.values()) entries += queues.size;
    }
    this.table = table;
    this.entries = entries;
    this.tracker.markPersisted();
  }

  /**
   * Set the group's offset of a queue: the next queue offset it consumes. It may move backwards
   * (seek, reset). Durable at the next persist.
   */
  commit(group: string, topic: string, queueId: number, offset: number): void {
    // A consumer commits after every acknowledgement: a queue already in the table had its
    // names checked when it was added.
    const known = this.table.get(group)?.get(topic);
    if (known !== undefined && known.has(queueId) && isOffset(offset)) {
      known.set(queueId, new Committed(offset, this.clock.now()));
      this.tracker.changed();
      return;
    }
    checkGroupName(group);
    checkTopicName(topic);
    if (!isQueueId(queueId)) {
      throw new PocketMQError('INVALID_OPTION', `queueId must be an integer from 0 to ` +
        `${limits.maxQueuesPerTopic - 1}, got ${String(queueId)}`, { property: 'queueId', topic });
    }
    if (!isOffset(offset)) {
      throw new PocketMQError('INVALID_OPTION', `an offset must be an integer from 0 to ` +
        `Number.MAX_SAFE_INTEGER, got ${String(offset)}`, { property: 'offset', topic });
    }
    const topics = this.table.get(group);
    const queues = topics?.get(topic);
    if (queues?.has(queueId) !== true && this.entries >= MAX_OFFSET_ENTRIES) {
      throw new PocketMQError('LIMIT_EXCEEDED', `at most ${MAX_OFFSET_ENTRIES} consumer offsets ` +
        '(group, topic, queue) are kept; remove the offsets of groups no longer used',
        { topic, limit: MAX_OFFSET_ENTRIES, actual: this.entries + 1 });
    }
    const entry: Entry = Object.freeze({ offset, lastCommitMs: this.clock.now() });
    if (queues !== undefined) {
      if (!queues.has(queueId)) this.entries += 1;
      queues.set(queueId, entry);
    } else {
      const fresh = new Map([[queueId, entry]]);
      if (topics === undefined) this.table.set(group, new Map([[topic, fresh]]));
      else topics.set(topic, fresh);
      this.entries += 1;
    }
    this.tracker.changed();
  }

  /**
   * A follower: merge its master's consumerOffset.json (`bytes`). Per group, topic and queue
   * the entry committed last wins (`lastCommitMs`): the master's progress is copied, and a
   * group consuming on the follower keeps its own newer commits. Durable at the next persist.
   */
  applyReplicated(bytes: Buffer): void {
    let changed = false;
    for (const [group, topics] of this.file.decode(bytes)) {
      for (const [topic, queues] of topics) {
        for (const [queueId, entry] of queues) {
          const local = this.table.get(group)?.get(topic)?.get(queueId);
          if (local !== undefined && local.lastCommitMs >= entry.lastCommitMs) continue;
          if (local === undefined && this.entries >= MAX_OFFSET_ENTRIES) continue;
          let byTopic = this.table.get(group);
          if (byTopic === undefined) this.table.set(group, (byTopic = new Map()));
          let byQueue = byTopic.get(topic);
          if (byQueue === undefined) byTopic.set(topic, (byQueue = new Map()));
          if (local === undefined) this.entries += 1;
          byQueue.set(queueId, entry);
          changed = true;
        }
      }
    }
    if (changed) this.tracker.changed();
  }

  /** The group's offset of a queue, or -1 when it has none. */
  query(group: string, topic: string, queueId: number): number {
    return this.table.get(group)?.get(topic)?.get(queueId)?.offset ?? -1;
  }

  /** Groups with at least one offset, sorted. */
  groups(): string[] {
    return [...this.table.keys()].sort(compare);
  }

  /** The group's offsets, sorted by topic, then queueId. */
  offsetsOf(group: string): QueueOffset[] {
    const topics = this.table.get(group);
    if (topics === undefined) return [];
    const out: QueueOffset[] = [];
    for (const topic of [...topics.keys()].sort(compare)) {
      const queues = topics.get(topic)!;
      for (const queueId of [...queues.keys()].sort((a, b) => a - b)) {
        const { offset, lastCommitMs } = queues.get(queueId)!;
        out.push({ topic, queueId, offset, lastCommitMs });
      }
    }
    return out;
  }

  /** Forget the group's offsets: all of them, or those of one topic. */
  remove(group: string, topic?: string): void {
    const topics = this.table.get(group);
    if (topics === undefined) return;
    const dropped = topic === undefined ? [...topics.values()] : [topics.get(topic)];
    for (const queues of dropped) this.entries -= queues?.size ?? 0;
    if (dropped.every((queues) => queues === undefined)) return;
    if (topic !== undefined) topics.delete(topic);
    if (topic === undefined || topics.size === 0) this.table.delete(group);
    this.tracker.changed();
  }

  /** Write the table if it changed since the last write; resolves once it is durable. */
  persist(): Promise<void> {
    this.beforeSnapshot();
    return this.tracker.persist(() => {
      const snapshot = cloneTable(this.table);
      const before = this.beforePersist;
      return before === null ? this.file.save(snapshot)
        : before().then(() => this.file.save(snapshot));
    });
  }

  /** Persist every persistIntervalMs on the clock, until `stop`. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.schedule();
  }

  /** Cancel the timer and persist a last time. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    await this.persist();
  }

  private schedule(): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.persist().catch((err: unknown) => {
        const detail = err instanceof Error ? err.message : String(err);
        this.logger.error(`consumer offsets: timed persist failed, will retry: ${detail}`);
      }).finally(() => {
        if (this.started && this.timer === null) this.schedule();
      });
    }, this.intervalMs);
  }
}

function cloneTable(table: Table): Table {
  const out: Table = new Map();
  for (const [group, topics] of table) {
    const copy = new Map<string, Map<number, Entry>>();
    for (const [topic, queues] of topics) copy.set(topic, new Map(queues));
    out.set(group, copy);
  }
  return out;
}

function tableToJson(table: Table): { offsets: FileData } {
  // Object.fromEntries defines own properties: a group or topic named `__proto__` is written as
  // one, where assigning it would set the object's prototype and drop it from the file.
  const groups: FileData = Object.fromEntries([...table].sort((a, b) => compare(a[0], b[0]))
    .map(([group, topics]) => [group, Object.fromEntries([...topics]
      .sort((a, b) => compare(a[0], b[0]))
      .map(([topic, queues]) => [topic, Object.fromEntries(queues)]))]));
  return { offsets: groups };
}

/** Check the file's `data` and build the table; throws on anything invalid. */
function parseOffsets(raw: unknown): Table {
  const groups = (raw as { offsets?: unknown } | null)?.offsets;
  if (!isPlainObject(groups)) throw new Error('expected {"offsets": {<group>: ...}}');
  const table: Table = new Map();
  for (const [group, topicsRaw] of Object.entries(groups)) {
    checkGroupName(group);
    if (!isPlainObject(topicsRaw)) throw new Error(`group ${group}: expected an object of topics`);
    const topics = new Map<string, Map<number, Entry>>();
    for (const [topic, queuesRaw] of Object.entries(topicsRaw)) {
      checkTopicName(topic);
      const where = `group ${group}, topic ${topic}`;
      if (!isPlainObject(queuesRaw)) throw new Error(`${where}: expected an object of queues`);
      const queues = new Map<number, Entry>();
      for (const [key, value] of Object.entries(queuesRaw)) {
        const queueId = Number(key);
        if (!isQueueId(queueId) || String(queueId) !== key) {
          throw new Error(`${where}: ${JSON.stringify(key)} is not a queue id`);
        }
        const { offset, lastCommitMs } = (isPlainObject(value) ? value : {}) as Partial<Entry>;
        if (!isOffset(offset) || !isOffset(lastCommitMs)) {
          throw new Error(`${where}, queue ${key}: offset and lastCommitMs must be integers >= 0`);
        }
        queues.set(queueId, Object.freeze({ offset, lastCommitMs }));
      }
      if (queues.size > 0) topics.set(topic, queues);
    }
    if (topics.size > 0) table.set(group, topics);
  }
  return table;
}

/** Code-unit order: the same on every machine and locale. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
