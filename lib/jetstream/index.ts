/**
 * `pocketmq/jetstream`: the same producer and consumer API on a NATS JetStream cluster, for an
 * application that outgrew one machine. Needs the optional peer dependencies
 * `@nats-io/jetstream` and `@nats-io/transport-node` (loaded on `connect`, never by `pocketmq`
 * itself). Built on pocketmq's public API only.
 * @module pocketmq/jetstream
 */
export { JetStreamStore } from './store.js';
export { JetStreamProducer } from './producer.js';
export { JetStreamPushConsumer } from './push-consumer.js';
export { JetStreamPullConsumer } from './pull-consumer.js';
export { JetStreamConsumerBase } from './consumer-base.js';
export { jetStreamDefaults } from './options.js';
export type { JetStreamStoreOptions } from './options.js';
