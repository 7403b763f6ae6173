/**
 * One store lifetime of the simulation: a MessageStore opened on its own ProcessDisk over the
 * shared simulated disk, with its own ManualClock (a dead process's timers never fire again), one
 * producer and one pull consumer (autoCommit off) assigned every simulated queue.
 */
import { MessageStore } from '../../lib/client/message-store.js';
import type { Producer } from '../../lib/client/producer.js';
import type { PullConsumer } from '../../lib/client/pull-consumer.js';
import { ManualClock } from '../../lib/store/clock.js';
import type { FlushDiskType, StoreOptions } from '../../lib/store/options.js';
import type { SimBackend } from '../support/sim-backend.js';
import { allQueues, int, pick, SIM_GROUP, SIM_TOPICS, type Random } from './messages.js';
import { ProcessDisk } from './process-disk.js';

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
    // Retention stays out of this first simulator: segments are never old or the disk full.
    fileReservedTimeHours: 1_000_000,
    diskMaxUsedSpaceRatio: 1,
    diskFullRatio: 1,
    cleanResourceIntervalMs: 86_400_000,
  };
}

export class Lifetime {
  private constructor(
    readonly store: MessageStore,
    readonly disk: ProcessDisk,
    readonly clock: ManualClock,
    readonly mode: FlushDiskType,
    readonly producer: Producer,
    readonly consumer: PullConsumer,
  ) {}

  /** Open the store in `dir`; the first lifetime creates the topics. */
  static async open(dir: string, sim: SimBackend, random: Random, startMs: number,
    first: boolean): Promise<Lifetime> {
    const mode: FlushDiskType = random() < 0.5 ? 'SYNC_FLUSH' : 'ASYNC_FLUSH';
    const disk = new ProcessDisk(sim);
    const clock = new ManualClock(startMs);
    const store = await MessageStore.open(dir, {
      ...storeOptions(random, mode), backend: disk, clock,
      persistConsumerOffsetIntervalMs: pick(random, [300, 3000]),
    });
    try {
      if (first) {
        for (const { topic, queues } of SIM_TOPICS) {
          await store.createTopic(topic, { queueNums: queues });
        }
      }
      const producer = store.createProducer({ group: 'sim_producer' });
      const consumer = store.createPullConsumer({ group: SIM_GROUP, autoCommit: false,
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', pullBatchSize: int(random, 1, 32) });
      consumer.assign(allQueues());
      await consumer.start();
      return new Lifetime(store, disk, clock, mode, producer, consumer);
    } catch (err) {
      disk.kill();
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  get isOpen(): boolean {
    return this.disk.isAlive && this.store.engine.isOpen;
  }
}
