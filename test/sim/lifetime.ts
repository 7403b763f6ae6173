/**
 * One store lifetime of the simulation: a MessageStore opened on its own ProcessDisk over the
 * shared simulated disk, with its own ManualClock (a dead process's timers never fire again), one
 * producer and one pull consumer (autoCommit off) per consumer group, assigned every queue.
 * With a follower (follower.ts), the store is its master (`replication`: the role and network).
 */
import { MessageStore } from '../../lib/message-store.js';
import type { Producer } from '../../lib/client/producer.js';
import type { PullConsumer } from '../../lib/client/pull-consumer.js';
import type { ConsumeListener, PushConsumer } from '../../lib/client/push-consumer.js';
import { ManualClock } from '../../lib/store/clock.js';
import type { FlushDiskType, StoreOptions } from '../../lib/store/options.js';
import { allQueues, int, pick, SIM_GROUPS, SIM_TOPICS, type Random } from './messages.js';
import type { ProcessDisk } from './process-disk.js';
import { storeInternals } from '../../lib/internal.js';

/** Segments older than this go at the next retention run (the simulation ages the clock). */
export const RESERVED_HOURS = 1;
export const RESERVED_MS = RESERVED_HOURS * 3_600_000;
/** Check-backs of a half message before it goes to the check-max topic. */
export const TX_CHECK_MAX = 4;
/** Retention runs this often on the store's clock (and when the simulation calls it). */
const RETENTION_INTERVAL_MS = 600_000;

/** Small files everywhere, so a run rolls segments, ConsumeQueue files and index files. */
function storeOptions(random: Random, mode: FlushDiskType): StoreOptions {
  return {
    flushDiskType: mode,
    syncFlushTimeoutMs: pick(random, [200, 2000]),
    commitLogSegmentSize: 64 * 1024,
    consumeQueueEntriesPerFile: 32,
    indexHashSlots: 64,
    indexMaxEntries: 256,
    flushIntervalMs: pick(random, [50, 200, 500]),
    flushLeastPages: pick(random, [0, 1, 4]),
    flushThoroughIntervalMs: 2000,
    flushConsumeQueueIntervalMs: pick(random, [100, 1000]),
    // Retention by age only: the simulated disk is never nearly full.
    fileReservedTimeHours: RESERVED_HOURS,
    diskMaxUsedSpaceRatio: 1,
    diskFullRatio: 1,
    cleanResourceIntervalMs: RETENTION_INTERVAL_MS,
  };
}

export class Lifetime {
  private constructor(
    readonly store: MessageStore,
    readonly disk: ProcessDisk,
    readonly clock: ManualClock,
    readonly mode: FlushDiskType,
    readonly producer: Producer,
    /** One per group of SIM_GROUPS, in that order. */
    readonly consumers: readonly PullConsumer[],
  ) {}

  /** The push consumer of PUSH_GROUP, once started. */
  push: PushConsumer | null = null;
  orderly = false;

  /** Start the push consumer of `group` (concurrent or orderly) on every simulated topic. */
  async startPush(group: string, random: Random, listener: ConsumeListener): Promise<void> {
    this.orderly = random() < 0.3;
    const push = this.store.createPushConsumer({ group, orderly: this.orderly,
      consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', pullBatchSize: int(random, 1, 32),
      consumeMessageBatchMaxSize: int(random, 1, 4), consumeThreadMax: pick(random, [1, 4, 20]),
      suspendCurrentQueueTimeMillis: 500 });
    for (const { topic } of SIM_TOPICS) push.subscribe(topic, '*');
    push.registerMessageListener(listener);
    await push.start();
    this.push = push;
  }

  /** Open the store in `dir` through `disk`; the first lifetime creates the topics. */
  static async open(dir: string, disk: ProcessDisk, random: Random, startMs: number,
    first: boolean, replication: object = {}): Promise<Lifetime> {
    const mode: FlushDiskType = random() < 0.5 ? 'SYNC_FLUSH' : 'ASYNC_FLUSH';
    const clock = new ManualClock(startMs);
    const store = await MessageStore.open(dir, {
      ...storeOptions(random, mode), backend: disk, clock,
      persistConsumerOffsetIntervalMs: pick(random, [300, 3000]),
      transactionTimeoutMs: 3000, transactionCheckIntervalMs: pick(random, [1000, 5000]),
      transactionCheckMax: TX_CHECK_MAX, ...replication,
    });
    try {
      if (first) {
        for (const { topic, queues } of SIM_TOPICS) {
          await store.createTopic(topic, { queueNums: queues });
        }
      }
      const producer = store.createProducer({ group: 'sim_producer' });
      const consumers: PullConsumer[] = [];
      for (const group of SIM_GROUPS) {
        const consumer = store.createPullConsumer({ group, autoCommit: false,
          consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', pullBatchSize: int(random, 1, 32) });
        consumer.assign(allQueues());
        await consumer.start();
        consumers.push(consumer);
      }
      return new Lifetime(store, disk, clock, mode, producer, consumers);
    } catch (err) {
      disk.kill();
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  get isOpen(): boolean {
    return this.disk.isAlive && storeInternals(this.store).engine.isOpen;
  }
}
