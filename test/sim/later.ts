/**
 * The simulator's delayed, scheduled and transactional sends (the steps; the rules are
 * later-model.ts): `delayTimeLevel` 1 to 19 (past the last level is the last) and `deliverAt`
 * from a second in the past to two hours ahead, to SimLater; `cancelScheduled` of one not yet
 * due; `sendMessageInTransaction` to SimTx through a transactional producer that every lifetime
 * makes again, whose local transactions commit, roll back, or stay UNKNOWN for some check-backs
 * (or for good), each by a fate drawn at its send. At the end of a run, time passes on the
 * store's clock until every due time and check-back is over, and what the store appends is
 * checked as it comes.
 */
import { toMessageExt } from '../../lib/broker/message.js';
import type { Producer } from '../../lib/client/producer.js';
import type { TransactionListener } from '../../lib/client/transaction-listener.js';
import {
  DEFAULT_MESSAGE_DELAY_LEVEL, parseDelayLevels,
} from '../../lib/broker/delay-levels.js';
import { LaterModel, LATER_TOPICS, type LaterScan, type TxFate } from './later-model.js';
import { TX_CHECK_MAX, type Lifetime } from './lifetime.js';
import {
  ID_PROPERTY, int, makeMessage, pick, queueName, toMessage, type QueueRef, type Random,
} from './messages.js';
import type { Ending, Oracle } from './oracle.js';
import { turns } from './turns.js';
import { storeInternals } from '../../lib/internal.js';

const TX_GROUP = 'sim_tx';
const DEFAULT_DELAY_LEVELS_MS = parseDelayLevels(DEFAULT_MESSAGE_DELAY_LEVEL);
const FATES: readonly TxFate[] =
  ['commit', 'commit', 'rollback', 'late-commit', 'late-rollback', 'unknown'];
/** Delay levels drawn: short ones mostly, up to past the last (19: the last, 2 h). */
const LEVELS = [1, 1, 2, 3, 3, 4, 5, 6, 9, 14, 15, 16, 17, 18, 19];
/** deliverAt, from now: in the past (delivered at once), soon, later, hours ahead. */
const AT_OFFSETS_MS = [-1000, 0, 300, 2000, 15_000, 60_000, 600_000, 5_400_000];
/** The end of a run lets time pass at most this often, and this much at a time. */
const FINISH_ROUNDS = 400;
const FINISH_STEP_MS = 30_000;

/** What the later sends need of the simulation. */
export interface LaterHost {
  readonly random: Random;
  readonly oracle: Oracle;
  current(): Lifetime;
  now(): number;
  nextId(): number;
  note(line: string): void;
  count(what: string): void;
  track(work: Promise<void>): void;
  expectCoded(err: unknown, what: string, lifetime: number): void;
  fail(err: unknown): void;
  advance(ms: number): void;
}

function simId(properties: Readonly<Record<string, unknown>> | undefined): number {
  const raw = String(properties?.[ID_PROPERTY]);
  return /^\d+$/.test(raw) ? Number(raw) : -1;
}

export class LaterSends {
  readonly model: LaterModel;
  private tx: Producer | null = null;
  /** The commit log was read up to here at the end of a run. */
  private observedTo = 0;

  constructor(private readonly host: LaterHost) {
    this.model = new LaterModel();
  }

  /** A lifetime opened: make the topics (the first one) and the transactional producer. */
  async started(first: boolean): Promise<void> {
    const life = this.host.current();
    if (first) {
      for (const { topic, queues } of LATER_TOPICS) {
        await life.store.createTopic(topic, { queueNums: queues });
      }
    }
    this.tx = null;
    try {
      this.tx = life.store.createProducer({ group: TX_GROUP,
        transactionListener: this.listener(life) });
    } catch (err) {
      // A store stopped by a fault at its open takes no producer (the next lifetime will).
      this.host.expectCoded(err, 'transactional producer', this.host.oracle.lifetime);
    }
  }

  private listener(life: Lifetime): TransactionListener {
    const { host } = this;
    const lifetime = host.oracle.lifetime;
    const live = (): boolean => lifetime === host.oracle.lifetime && life.disk.isAlive;
    return {
      executeLocalTransaction: (message) => {
        if (!live()) return 'UNKNOWN';
        const answer = this.model.executeAnswer(simId(message.properties));
        if (answer === 'UNKNOWN' && this.model.fateOf(simId(message.properties)) ===
          'late-rollback') throw new Error('sim: the local transaction failed');
        return answer;
      },
      checkLocalTransaction: (message) => {
        if (!live()) return 'UNKNOWN';
        try {
          return this.model.checkAnswer(simId(message.properties));
        } catch (err) {
          host.fail(err);
          return 'UNKNOWN';
        }
      },
    };
  }

  /** Send one message with delayTimeLevel or deliverAt to a queue of SimLater. */
  sendDelayed(): void {
    const { host } = this;
    const life = host.current();
    const q: QueueRef = { topic: 'SimLater', queueId: int(host.random, 0, 1) };
    const msg = makeMessage(host.random, host.nextId(), q);
    const now = host.now();
    let extra: { delayTimeLevel: number } | { deliverAt: number };
    let due: number;
    if (host.random() < 0.5) {
      const level = pick(host.random, LEVELS);
      extra = { delayTimeLevel: level };
      due = now + DEFAULT_DELAY_LEVELS_MS[Math.min(level, DEFAULT_DELAY_LEVELS_MS.length) - 1]!;
    } else {
      due = now + pick(host.random, AT_OFFSETS_MS);
      extra = { deliverAt: due };
    }
    const kind = 'delayTimeLevel' in extra ? 'level' : 'at';
    this.model.sent(msg, kind, due, host.oracle.lifetime, life.mode);
    host.note(`send ${msg.id} ${kind === 'level' ? `level ${(extra as { delayTimeLevel: number })
      .delayTimeLevel}` : `at +${due - now} ms`} -> ${queueName(q)}`);
    const lifetime = host.oracle.lifetime;
    host.track(life.producer.send({ ...toMessage(msg), ...extra }, { selector: () => q.queueId })
      .then((r) => {
        if (!life.disk.isAlive || lifetime !== host.oracle.lifetime) return;
        this.model.acked(msg.id, r.status, r.msgId, r.commitLogOffset);
      }, (err: unknown) => {
        if (life.disk.isAlive) host.expectCoded(err, `send ${msg.id}`, lifetime);
      }));
  }

  /** Send one message in a transaction to SimTx; its fate decides the local transaction. */
  sendTx(): void {
    const { host } = this;
    const life = host.current();
    const tx = this.tx;
    if (tx === null) return;
    const msg = makeMessage(host.random, host.nextId(), { topic: 'SimTx', queueId: 0 });
    const fate = pick(host.random, FATES);
    const unknownChecks = int(host.random, 0, TX_CHECK_MAX - 2);
    this.model.sent(msg, 'tx', 0, host.oracle.lifetime, life.mode, fate, unknownChecks);
    host.note(`transaction ${msg.id} ${fate}${fate.startsWith('late') ? ` after ` +
      `${unknownChecks} checks` : ''}`);
    const lifetime = host.oracle.lifetime;
    host.track(tx.sendMessageInTransaction(toMessage(msg)).then((r) => {
      if (!life.disk.isAlive || lifetime !== host.oracle.lifetime) return;
      this.model.acked(msg.id, r.status, r.msgId, r.commitLogOffset);
    }, (err: unknown) => {
      if (life.disk.isAlive) host.expectCoded(err, `transaction ${msg.id}`, lifetime);
    }));
  }

  /** Cancel a scheduled message not yet due (sent in this lifetime or an earlier one). */
  cancel(): void {
    const { host } = this;
    const life = host.current();
    const candidates = this.model.cancellable(host.now());
    if (candidates.length === 0) return;
    const { id, msgId } = pick(host.random, candidates);
    host.note(`cancel ${id}`);
    const lifetime = host.oracle.lifetime;
    this.model.cancelResolved(id, null);
    host.track(life.producer.cancelScheduled(msgId).then((cancelled) => {
      if (!life.disk.isAlive || lifetime !== host.oracle.lifetime) return;
      host.count(`cancel ${cancelled}`);
      this.model.cancelResolved(id, cancelled);
    }, (err: unknown) => {
      if (life.disk.isAlive) host.expectCoded(err, `cancel ${id}`, lifetime);
    }));
  }

  /** After a reopen: check the log's records of ours. */
  recovered(scan: LaterScan, ending: Ending): void {
    this.model.recovered(scan, ending, this.host.now());
    this.observedTo = storeInternals(this.host.current().store).engine.commitLogMaxOffset;
  }

  /**
   * The end of a run (no fault left): time passes until every due time and check-back is
   * over, what the store appends checked as it comes.
   */
  async finish(): Promise<void> {
    const { host } = this;
    const latest = this.model.latestDue();
    for (let i = 0; i < FINISH_ROUNDS; i++) {
      this.observe();
      if (this.model.owed().length === 0 && host.now() > latest) break;
      host.advance(FINISH_STEP_MS);
      await turns(3);
    }
    this.observe();
    host.note(`later: ${this.model.owed().length} owed after the end's wait`);
  }

  /** Read what the live store appended since the last look. */
  private observe(): void {
    const life = this.host.current();
    if (!life.isOpen) return;
    const engine = storeInternals(life.store).engine;
    const from = Math.max(this.observedTo, engine.commitLogMinOffset);
    for (const rec of engine.storage.commitLog.iterate(from)) {
      this.model.observed(toMessageExt(rec), engine.commitLogMinOffset);
      this.observedTo = rec.physicalOffset + rec.size;
    }
  }
}
