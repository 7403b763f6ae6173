/**
 * One connection to a NATS cluster and what every producer and consumer of a JetStreamStore
 * needs of it: the topics' streams (created on first send, `replicas` replicas, one subject per
 * queue), the consumer groups' durable consumers, calls that wait out a leader election, and
 * NATS errors turned into coded PocketMQErrors.
 */
import { EventEmitter } from 'node:events';
import type { ConsumerConfig, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { PocketMQError, type Logger } from '../index.js';
import { queueIdOf, queueSubject, streamOf } from './codec.js';
import { loadNats, type NatsModules } from './nats-loader.js';
import type { ResolvedStoreOptions } from './options.js';

const NANOS_PER_MS = 1_000_000;
/** JetStream API error: the stream does not exist. */
const STREAM_NOT_FOUND = 10059;
/** JetStream API error: the consumer does not exist. */
const CONSUMER_NOT_FOUND = 10014;
/** JetStream API error: the JetStream system is temporarily unavailable. */
const CLUSTER_NOT_AVAILABLE = 10008;
/** Longest pause between two attempts of a call that failed retriably. */
const MAX_BACKOFF_MS = 1000;

/** Where a new durable consumer starts. */
export type StartPolicy = { readonly policy: 'all' | 'new' } |
  { readonly policy: 'by_start_time'; readonly timeMs: number };

export interface DurableSpec {
  readonly topic: string;
  readonly queueId: number;
  readonly name: string;
  readonly start: StartPolicy;
  /** Messages delivered and not yet acknowledged, at most. */
  readonly maxAckPending: number;
  /** The servers remove the durable after this long without a reader; 0: never. */
  readonly inactiveThresholdMs: number;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : '';
}

/** True for a failure that a later attempt may not meet: timeouts, elections, reconnects. */
export function isRetriable(err: unknown): boolean {
  const name = errorName(err);
  if (['TimeoutError', 'JetStreamNotEnabled', 'NoResponders', 'ConnectionError'].includes(name)) {
    return true;
  }
  if (name === 'RequestError') return isRetriable((err as Error).cause);
  if (name === 'JetStreamApiError' || name === 'JetStreamStatusError') {
    const e = err as { code?: number; status?: number };
    return e.status === 503 || e.code === 503 || e.code === CLUSTER_NOT_AVAILABLE;
  }
  return false;
}

function apiCode(err: unknown): number | undefined {
  return (err as { code?: number } | null)?.code;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Connection extends EventEmitter {
  private readonly topics = new Map<string, Promise<number>>();
  private closing: Promise<void> | null = null;

  private constructor(readonly options: ResolvedStoreOptions, readonly nats: NatsModules,
    readonly nc: NatsConnection, readonly js: JetStreamClient, readonly jsm: JetStreamManager) {
    super();
    this.setMaxListeners(0);
    void this.watchStatus();
  }

  static async open(options: ResolvedStoreOptions): Promise<Connection> {
    const nats = await loadNats();
    let nc: NatsConnection;
    try {
      nc = await nats.connect({ maxReconnectAttempts: -1, ...options.natsOptions,
        servers: options.servers });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new PocketMQError('IO_ERROR',
        `cannot connect to NATS at ${options.servers.join(', ')}: ${why}`, { cause: err });
    }
    try {
      const timeout = options.requestTimeoutMs;
      const jsm = await nats.jetstreamManager(nc, { timeout, checkAPI: false });
      const connection = new Connection(options, nats, nc, nats.jetstream(nc, { timeout }), jsm);
      await connection.retrying('reach JetStream', () => jsm.getAccountInfo());
      return connection;
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  get logger(): Logger {
    return this.options.logger;
  }

  get isClosed(): boolean {
    return this.closing !== null || this.nc.isClosed();
  }

  /** The largest message (body and headers) the servers take. */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  checkOpen(): void {
    if (this.isClosed) throw new PocketMQError('STORE_CLOSED', 'the JetStream store is closed');
  }

  newHeaders(): MsgHdrs {
    return this.nats.headers();
  }

  /**
   * `call` until it succeeds, a non-retriable error, or `sendTimeoutMs` passes (a leader
   * election takes seconds); backs off from 50 ms to 1 s between attempts.
   */
  async retrying<T>(what: string, call: () => Promise<T>, topic?: string): Promise<T> {
    const deadline = Date.now() + this.options.sendTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (this.isClosed) throw this.translate(err, what, topic);
        if (!isRetriable(err) || Date.now() >= deadline) throw this.translate(err, what, topic);
        this.logger.debug(`pocketmq: ${what}: ${(err as Error).message}; trying again`);
        await sleep(Math.min(MAX_BACKOFF_MS, 50 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  /** A NATS failure as a coded error: TIMEOUT (retriable), STORE_CLOSED, or IO_ERROR. */
  translate(err: unknown, what: string, topic?: string): PocketMQError {
    if (err instanceof PocketMQError) return err;
    const why = err instanceof Error ? err.message : String(err);
    const fields = topic === undefined ? { cause: err } : { cause: err, topic };
    if (this.isClosed || errorName(err) === 'ClosedConnectionError') {
      return new PocketMQError('STORE_CLOSED', `${what}: the JetStream store is closed`, fields);
    }
    if (isRetriable(err)) {
      return new PocketMQError('TIMEOUT', `${what}: the JetStream cluster did not answer in ` +
        `time (${why}); the operation may or may not have taken effect`, fields);
    }
    return new PocketMQError('IO_ERROR', `${what}: ${why}`, fields);
  }

  /** The queue count of a topic a producer sends to: its stream, created on first use. */
  topicForSend(topic: string, queueNums = this.options.defaultTopicQueueNums): Promise<number> {
    let known = this.topics.get(topic);
    if (known === undefined) {
      known = this.retrying(`create topic ${topic}`, () => this.ensureStream(topic, queueNums),
        topic);
      this.topics.set(topic, known);
      known.catch(() => this.topics.delete(topic));
    }
    return known;
  }

  /** The queue count of an existing topic, 0 when its stream does not exist (yet). */
  async queueCount(topic: string): Promise<number> {
    const known = this.topics.get(topic);
    if (known !== undefined) return known;
    const count = await this.retrying(`look up topic ${topic}`,
      () => this.streamQueues(topic), topic);
    if (count > 0) this.topics.set(topic, Promise.resolve(count));
    return count;
  }

  private async streamQueues(topic: string): Promise<number> {
    try {
      const info = await this.jsm.streams.info(streamOf(topic));
      return this.checkTopicStream(topic, info.config.subjects ?? []);
    } catch (err) {
      if (apiCode(err) === STREAM_NOT_FOUND) return 0;
      throw err;
    }
  }

  private async ensureStream(topic: string, queueNums: number): Promise<number> {
    const existing = await this.streamQueues(topic);
    if (existing > 0) return existing;
    const subjects = Array.from({ length: queueNums }, (_, q) => queueSubject(topic, q));
    try {
      await this.jsm.streams.add({ name: streamOf(topic), subjects,
        num_replicas: this.options.replicas, storage: 'file', retention: 'limits', discard: 'old',
        duplicate_window: this.options.duplicateWindowMs * NANOS_PER_MS });
    } catch (err) {
      // Another producer made it first, maybe with another queue count: take what is there.
      const made = await this.streamQueues(topic);
      if (made > 0) return made;
      throw err;
    }
    this.logger.info(`pocketmq: created topic ${topic}: ${queueNums} queues, ` +
      `${this.options.replicas} replica(s)`);
    return queueNums;
  }

  /** The queue count a topic's stream has; a stream that is not a pocketmq topic is refused. */
  private checkTopicStream(topic: string, subjects: readonly string[]): number {
    const stream = streamOf(topic);
    const ids = subjects.map((s) => s.startsWith(`${stream}.`) ? queueIdOf(s) : -1)
      .sort((a, b) => a - b);
    if (ids.length === 0 || ids.some((id, i) => id !== i)) {
      throw new PocketMQError('INVALID_TOPIC', `stream ${stream} exists but is not a pocketmq ` +
        `topic: its subjects are ${JSON.stringify(subjects)}, not ${stream}.0, ${stream}.1, ...`,
      { topic });
    }
    return ids.length;
  }

  /**
   * A durable consumer of one queue, created with `spec.start` when new; an existing one keeps
   * its position (the group's offset), and takes the new acknowledgement limits.
   */
  async ensureDurable(spec: DurableSpec): Promise<void> {
    const config: Partial<ConsumerConfig> = {
      durable_name: spec.name, filter_subject: queueSubject(spec.topic, spec.queueId),
      ack_policy: 'explicit', ack_wait: this.options.ackWaitMs * NANOS_PER_MS, max_deliver: -1,
      max_ack_pending: spec.maxAckPending,
      ...spec.inactiveThresholdMs > 0
        ? { inactive_threshold: spec.inactiveThresholdMs * NANOS_PER_MS } : {},
    };
    await this.retrying(`create consumer ${spec.name} of ${spec.topic}`, async () => {
      try {
        const info = await this.jsm.consumers.info(streamOf(spec.topic), spec.name);
        const c = info.config;
        if (c.max_ack_pending !== spec.maxAckPending || c.ack_wait !== config.ack_wait) {
          await this.jsm.consumers.update(streamOf(spec.topic), spec.name,
            { max_ack_pending: spec.maxAckPending, ack_wait: config.ack_wait });
        }
      } catch (err) {
        if (apiCode(err) !== CONSUMER_NOT_FOUND) throw err;
        const start = spec.start.policy === 'by_start_time'
          ? { deliver_policy: 'by_start_time' as const,
            opt_start_time: new Date(spec.start.timeMs).toISOString() }
          : { deliver_policy: spec.start.policy };
        await this.jsm.consumers.add(streamOf(spec.topic), { ...config, ...start });
      }
    }, spec.topic);
  }

  /** Tell listeners (group memberships) when the connection drops and comes back. */
  private async watchStatus(): Promise<void> {
    try {
      for await (const status of this.nc.status()) {
        if (status.type === 'reconnect' || status.type === 'disconnect') {
          this.logger.info(`pocketmq: NATS ${status.type}ed (${status.server})`);
          this.emit(status.type);
        }
      }
    } catch (err) {
      this.logger.error(`pocketmq: NATS status: ${String(err)}`);
    }
  }

  /** Close the connection, after what is buffered (acknowledgements too) went out. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.nc.drain();
      } catch {
        await this.nc.close();
      }
    })();
    return this.closing;
  }
}
