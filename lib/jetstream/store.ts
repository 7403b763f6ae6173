/**
 * JetStreamStore: the embedded MessageStore's messaging API on a NATS JetStream cluster, for an
 * application that outgrew one machine and keeps its code. A topic is a stream (replicated by
 * Raft on `replicas` servers) whose queues are the subjects `<topic>.<queueId>`; a consumer
 * group is a durable consumer per queue. What JetStream cannot carry in this version throws
 * NOT_SUPPORTED with a message that says so (docs/scale-out.md lists it).
 */
import {
  PocketMQError, type MessageExt, type ProducerOptions, type PullConsumerOptions,
  type PushConsumerOptions, type QueryOptions,
} from '../index.js';
import { parseMessageId, streamOf, toMessageExt } from './codec.js';
import { Connection } from './connection.js';
import type { JetStreamConsumerBase } from './consumer-base.js';
import { resolveStoreOptions, type JetStreamStoreOptions } from './options.js';
import { JetStreamProducer } from './producer.js';
import { JetStreamPullConsumer } from './pull-consumer.js';
import { JetStreamPushConsumer } from './push-consumer.js';

export class JetStreamStore {
  private readonly producers = new Set<JetStreamProducer>();
  private readonly consumers = new Set<JetStreamConsumerBase>();
  private closing: Promise<void> | null = null;

  private constructor(private readonly connection: Connection) {}

  /**
   * Connect to the cluster and check that JetStream answers (waiting out an election for up
   * to `sendTimeoutMs`). Needs the optional packages `@nats-io/jetstream` and
   * `@nats-io/transport-node`; without them, NOT_SUPPORTED says what to install.
   */
  static async connect(options: JetStreamStoreOptions): Promise<JetStreamStore> {
    return new JetStreamStore(await Connection.open(resolveStoreOptions(options)));
  }

  /** The servers this store was given. */
  get servers(): readonly string[] {
    return this.connection.options.servers;
  }

  get replicas(): number {
    return this.connection.options.replicas;
  }

  get isClosed(): boolean {
    return this.closing !== null || this.connection.isClosed;
  }

  createProducer(options: ProducerOptions): JetStreamProducer {
    this.checkOpen();
    const producer = new JetStreamProducer(this.connection, options,
      (p) => this.producers.delete(p));
    this.producers.add(producer);
    return producer;
  }

  createPushConsumer(options: PushConsumerOptions): JetStreamPushConsumer {
    this.checkOpen();
    const consumer = new JetStreamPushConsumer(this.connection, options, this.forget);
    this.consumers.add(consumer);
    return consumer;
  }

  createPullConsumer(options: PullConsumerOptions): JetStreamPullConsumer {
    this.checkOpen();
    const consumer = new JetStreamPullConsumer(this.connection, options, this.forget);
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * The message with this id (`<topic>@<sequence>`, as SendResult and MessageExt carry it),
   * fetched from its stream; null for an unknown or malformed id.
   */
  async viewMessage(msgId: string): Promise<MessageExt | null> {
    this.checkOpen();
    const id = parseMessageId(msgId);
    if (id === null) return null;
    const stored = await this.connection.retrying(`view message ${msgId}`, async () => {
      try {
        return await this.connection.jsm.streams.getMessage(streamOf(id.topic),
          { seq: id.sequence });
      } catch (err) {
        if ((err as { code?: number } | null)?.code === 10059) return null; // no such stream
        throw err;
      }
    });
    if (stored === null) return null;
    return toMessageExt({ subject: stored.subject, topic: id.topic, sequence: stored.seq,
      headers: stored.header, data: stored.data, storeTimestamp: stored.time.getTime(),
      redeliveries: 0 });
  }

  /** Not on JetStream yet: NOT_SUPPORTED (JetStream keeps no index by message key). */
  queryMessage(_query: QueryOptions): Promise<MessageExt[]> {
    return Promise.reject(new PocketMQError('NOT_SUPPORTED', 'queryMessage by key is not ' +
      'supported on JetStream: streams keep no index by message key; find a message by its ' +
      'msgId with viewMessage'));
  }

  /** Shut every producer and consumer down, then close the connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const consumers = [...this.consumers];
      await Promise.allSettled(consumers.map((c) => c.shutdown()));
      await Promise.all([...this.producers].map((p) => p.shutdown()));
      await this.connection.close();
    })();
    return this.closing;
  }

  /** `await using store = await JetStreamStore.connect(...)` closes it at the block's end. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private checkOpen(): void {
    if (this.closing !== null) {
      throw new PocketMQError('STORE_CLOSED', 'the JetStream store is closed');
    }
    this.connection.checkOpen();
  }

  private readonly forget = (consumer: JetStreamConsumerBase): void => {
    this.consumers.delete(consumer);
  };
}
