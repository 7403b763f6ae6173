/**
 * The simulator's consumers: one pull consumer per group of SIM_GROUPS (polls and offset
 * commits are steps of the run) and one push consumer (PUSH_GROUP) whose listener the store
 * calls whenever it likes, asking now and then to see a message again. What they get feeds the
 * oracle (oracle.ts, group-model.ts, push-model.ts); after every reopen their committed offsets
 * are checked, and at the end of a run the push consumer must have handled the whole log.
 */
import { toMessageExt, type MessageExt } from '../../lib/broker/message.js';
import type { ConsumeListener } from '../../lib/client/push-consumer.js';
import { PocketMQError } from '../../lib/errors.js';
import type { Lifetime } from './lifetime.js';
import {
  allQueues, idOf, queueName, SIM_GROUPS, type QueueRef, type Random,
} from './messages.js';
import type { Ending, Oracle } from './oracle.js';
import { PUSH_GROUP, PushModel } from './push-model.js';
import { turns } from './turns.js';
import { Violation } from './violation.js';
import { storeInternals } from '../../lib/internal.js';

/** Errors a read may end with once its process died. */
const DEAD_CODES = new Set(['IO_ERROR', 'DISK_FULL', 'STORE_STOPPED', 'STORE_CLOSED']);
/** How often the push listener asks to see a message again. */
const RECONSUME_RATIO = 0.05;
/** The end of a run lets the push consumer catch up for at most this long on the clock. */
const DRAIN_ROUNDS = 360;
const DRAIN_STEP_MS = 5000;

/** `err` is a read that failed (an injected read fault), not a write a read made. */
export function failedRead(err: unknown): boolean {
  return (err as { cause?: { syscall?: unknown } }).cause?.syscall === 'read';
}

/** What the consumers need of the simulation. */
export interface ConsumerHost {
  readonly random: Random;
  readonly oracle: Oracle;
  current(): Lifetime;
  note(line: string): void;
  count(what: string): void;
  /** Keep a promise of this lifetime; what it throws fails the run. */
  track(work: Promise<void>): void;
  /** A commit failed: fine with a coded error once a fault or a crash explains it. */
  expectCoded(err: unknown, what: string, lifetime: number): void;
  /** A check failed outside a step (in a listener call): fail the run at the next step. */
  fail(err: unknown): void;
  /** Reads of the log see a flipped bit in this lifetime. */
  flipped(): boolean;
  /** A fault was injected in this lifetime (a read may fail IO_ERROR). */
  faulted(): boolean;
  /** Let `ms` pass on the lifetime's clock. */
  advance(ms: number): void;
}

export class SimConsumers {
  readonly pushed: PushModel;

  constructor(private readonly host: ConsumerHost) {
    this.pushed = new PushModel(host.oracle);
  }

  private queueMin(q: QueueRef): number {
    return storeInternals(this.host.current().store).engine.getMinOffsetInQueue(q.topic, q.queueId);
  }

  /** One group's consumer polls: it gets each queue in order from where it was. */
  async poll(): Promise<void> {
    const { host } = this;
    const life = host.current();
    const g = Math.floor(host.random() * SIM_GROUPS.length);
    const group = SIM_GROUPS[g]!;
    const consumer = life.consumers[g]!;
    let got;
    try {
      got = await consumer.poll(0);
    } catch (err) {
      const code = err instanceof PocketMQError ? err.code : '';
      if (!life.isOpen && DEAD_CODES.has(code)) return;
      const explained = (host.flipped() && code === 'CORRUPT_DATA') ||
        (host.faulted() && code === 'IO_ERROR' && failedRead(err));
      if (explained) {
        host.note(`poll ${group}: ${code}`);
        host.count(`poll ${code}`);
        return;
      }
      throw new Violation(`poll of ${group} failed: ${String(err)}`);
    }
    host.note(`poll ${group} ${got.map((m) => `${queueName(m)}@${m.queueOffset}`).join(' ')}`);
    for (const ext of got) host.oracle.delivered(group, ext, this.queueMin(ext));
    for (const q of allQueues()) {
      host.oracle.groups.position(group, q, consumer.position(q), this.queueMin(q));
    }
  }

  /** One group commits its consumer's positions (and the store persists them in time). */
  commit(): void {
    const { host } = this;
    const g = Math.floor(host.random() * SIM_GROUPS.length);
    const group = SIM_GROUPS[g]!;
    const consumer = host.current().consumers[g]!;
    const positions = new Map(allQueues().map((q) => [queueName(q), consumer.position(q)]));
    host.note(`commit ${group} ${[...positions.values()].join(',')}`);
    const token = host.oracle.committing(group, positions);
    const lifetime = host.oracle.lifetime;
    const disk = host.current().disk;
    // A killed process sees nothing more.
    host.track(consumer.commit().then(() => {
      if (disk.isAlive) token.persisted();
    }, (err: unknown) => {
      if (disk.isAlive) host.expectCoded(err, 'commit', lifetime);
    }));
  }

  /** After a reopen, before the push consumer starts: every group's committed offsets. */
  async checkAfterReopen(records: readonly MessageExt[], copies: ReadonlySet<number>,
    ending: Ending): Promise<void> {
    const life = this.host.current();
    const engine = storeInternals(life.store).engine;
    const progress = await life.store.consumerProgress(PUSH_GROUP);
    for (const q of allQueues()) {
      const max = engine.getMaxOffsetInQueue(q.topic, q.queueId);
      SIM_GROUPS.forEach((group, g) => {
        const committed = life.consumers[g]!.committed(q);
        this.host.oracle.groups.committedAfterReopen(group, q, committed, max, ending);
      });
      const entry = progress.find((p) => p.topic === q.topic && p.queueId === q.queueId);
      const ofQueue = records.filter((r) => r.topic === q.topic && r.queueId === q.queueId);
      this.pushed.afterReopen(q, entry?.consumerOffset ?? -1, max, ofQueue, copies);
    }
  }

  /** Start this lifetime's push consumer; its listener feeds the push model. */
  async startPush(): Promise<void> {
    const { host } = this;
    const life = host.current();
    const lifetime = host.oracle.lifetime;
    const listener: ConsumeListener = (messages, context) => {
      // A dead process handles nothing: what its consumer still hands out counts for nothing.
      if (lifetime !== host.oracle.lifetime || !life.disk.isAlive) return 'RECONSUME_LATER';
      const retried = context.messageQueue.topic.startsWith('%RETRY%');
      try {
        this.pushed.received(messages, life.orderly, retried);
      } catch (err) {
        host.fail(err);
        return 'RECONSUME_LATER';
      }
      const ok = host.random() >= RECONSUME_RATIO;
      for (const m of messages) this.pushed.answered(m, ok, retried);
      return ok ? 'CONSUME_SUCCESS' : 'RECONSUME_LATER';
    };
    this.pushed.started();
    await life.startPush(PUSH_GROUP, host.random, listener);
    host.note(`push consumer started (${life.orderly ? 'orderly' : 'concurrent'})`);
  }

  /**
   * The end of a run (no fault left): time passes until the push consumer handled every
   * message in the log, even those it asked to see again (but `others`' messages).
   */
  async drain(others: { has(id: number): boolean }): Promise<void> {
    const { host } = this;
    const engine = storeInternals(host.current().store).engine;
    const ids: number[] = [];
    for (const rec of engine.storage.commitLog.iterate(engine.commitLogMinOffset)) {
      const id = idOf(toMessageExt(rec));
      // Delayed and transactional messages (and Op records) are the later model's.
      if (id >= 0 && !others.has(id)) ids.push(id);
    }
    const left = (): number[] => ids.filter((id) => !this.pushed.isHandled(id));
    for (let i = 0; i < DRAIN_ROUNDS && left().length > 0; i++) {
      host.advance(DRAIN_STEP_MS);
      await turns(3);
    }
    const missed = left();
    host.note(`push drained: ${ids.length - missed.length} of ${ids.length} handled`);
    if (missed.length > 0) {
      throw new Violation(`the push consumer never handled ${missed.length} of ${ids.length} ` +
        `messages in the log (${missed.slice(0, 8).join(', ')})`);
    }
  }
}
