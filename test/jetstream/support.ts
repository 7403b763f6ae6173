/**
 * What the JetStream suites share: one 3-node cluster per suite file (started in beforeAll,
 * killed in afterAll), stores connected to it with short timings, unique topic and group names,
 * and waiting for a condition with a deadline.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { JetStreamStore } from '../../lib/jetstream/index.js';
import type { MessageExt, MessageSelector } from '../../lib/index.js';
import type {
  JetStreamPullConsumer, JetStreamStoreOptions,
} from '../../lib/jetstream/index.js';
import { startNatsCluster, type NatsCluster } from '../fixtures/nats-cluster.js';

/** Start a cluster for this suite file; the returned getter gives it to the tests. */
export function useNatsCluster(): () => NatsCluster {
  let cluster: NatsCluster | null = null;
  beforeAll(async () => {
    cluster = await startNatsCluster(3);
  }, 60_000);
  afterAll(() => {
    cluster?.stop();
  });
  return () => {
    if (cluster === null) throw new Error('the NATS cluster is not running');
    return cluster;
  };
}

/** A store on `cluster`, 3 replicas, short retry delays ('100ms' levels) and heartbeats. */
export async function connectStore(cluster: NatsCluster,
  options: Partial<JetStreamStoreOptions> = {}): Promise<JetStreamStore> {
  return JetStreamStore.connect({ servers: cluster.servers, replicas: 3,
    messageDelayLevel: '100ms 100ms 100ms 100ms 100ms', heartbeatIntervalMs: 200,
    requestTimeoutMs: 2000, ...options });
}

/** A name no other test uses: topics and groups of one cluster stay apart. */
export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Wait until `check()` is true, polling; fails with `what` after `ms`. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>,
  ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A new pull group reading `topic` from its first message, polled until it handed out at least
 * `count` messages (or `ms` pass: an error). The consumer is returned running.
 */
export async function readFromStart(store: JetStreamStore, topic: string, count: number,
  selector: string | MessageSelector = '*', ms = 15_000):
  Promise<{ messages: MessageExt[]; consumer: JetStreamPullConsumer }> {
  const consumer = store.createPullConsumer({ group: unique('reader'),
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
  consumer.subscribe(topic, selector);
  const messages: MessageExt[] = [];
  await eventually(`${count} messages of ${topic}`, async () => {
    messages.push(...await consumer.poll(200));
    return messages.length >= count;
  }, ms);
  return { messages, consumer };
}
