/**
 * A transactional producer's listener (RocketMQ's TransactionListener): checked once when the
 * producer is made, and called safely: a throw, a rejection or an answer that is not a
 * LocalTransactionState counts as UNKNOWN and is logged. Once the producer shuts down, a
 * check-back still waiting for its answer counts as UNKNOWN too, so the store can close.
 */
import {
  type LocalTransactionState, type Logger, type Message, type MessageExt, type SendResult,
} from '../broker/port.js';
import { invalidOption } from '../validate.js';

export type { LocalTransactionState } from '../broker/port.js';

/** A message sent in a transaction, as `executeLocalTransaction` gets it: with its msgId. */
export interface TransactionMessage extends Message {
  /** The half message's id: the id the committed message carries, and check-backs show. */
  readonly msgId: string;
}

/** What a transactional producer runs (RocketMQ's TransactionListener). */
export interface TransactionListener {
  /**
   * Run the local transaction of a message just stored as a half message (invisible to
   * consumers), with the `arg` given to `sendMessageInTransaction`. COMMIT_MESSAGE delivers the
   * message, ROLLBACK_MESSAGE drops it, UNKNOWN (or a throw) leaves it to the check-back.
   */
  executeLocalTransaction(message: TransactionMessage, arg: unknown):
    LocalTransactionState | Promise<LocalTransactionState>;
  /**
   * The store asks again about a half message whose transaction did not end within
   * `transactionTimeoutMs` (after a crash, or an UNKNOWN): `message` shows its topic and queue
   * and its msgId. Called every `transactionCheckIntervalMs`, at most `transactionCheckMax`
   * times, on a live producer of the same group.
   */
  checkLocalTransaction(message: MessageExt):
    LocalTransactionState | Promise<LocalTransactionState>;
}

/** A transactional send's result: the half message's receipt and how its transaction ended. */
export interface TransactionSendResult extends SendResult {
  readonly localTransactionState: LocalTransactionState;
}

const STATES: readonly unknown[] = ['COMMIT_MESSAGE', 'ROLLBACK_MESSAGE', 'UNKNOWN'];

/** The listener option, checked: null when none was given. */
export function checkTransactionListener(value: unknown): TransactionListener | null {
  if (value === undefined) return null;
  const listener = value as Partial<Record<keyof TransactionListener, unknown>> | null;
  if (listener === null || typeof listener !== 'object' ||
    typeof listener.executeLocalTransaction !== 'function' ||
    typeof listener.checkLocalTransaction !== 'function') {
    throw invalidOption('transactionListener', 'must be an object with the functions ' +
      'executeLocalTransaction and checkLocalTransaction');
  }
  return listener as TransactionListener;
}

/** Calls a listener for one producer group; answers UNKNOWN for whatever goes wrong. */
export class ListenerCaller {
  private stop: (() => void) | null = null;
  private readonly stopped: Promise<'UNKNOWN'>;

  constructor(private readonly listener: TransactionListener, private readonly group: string,
    private readonly logger: Logger) {
    this.stopped = new Promise((resolve) => {
      this.stop = () => resolve('UNKNOWN');
    });
  }

  execute(message: TransactionMessage, arg: unknown): Promise<LocalTransactionState> {
    return this.call('executeLocalTransaction', () =>
      this.listener.executeLocalTransaction(message, arg));
  }

  /** A check-back; UNKNOWN at once after `shutdown`. */
  check(message: MessageExt): Promise<LocalTransactionState> {
    const answer = this.call('checkLocalTransaction', () =>
      this.listener.checkLocalTransaction(message));
    return Promise.race([answer, this.stopped]);
  }

  /** Check-backs waiting for an answer count as UNKNOWN from now on. */
  shutdown(): void {
    this.stop?.();
  }

  private async call(what: string, fn: () => LocalTransactionState |
    Promise<LocalTransactionState>): Promise<LocalTransactionState> {
    let state: unknown;
    try {
      state = await fn();
    } catch (err) {
      const why = err instanceof Error ? (err.stack ?? err.message) : String(err);
      this.logger.error(`pocketmq: ${what} of producer group ${this.group} threw (counted as ` +
        `UNKNOWN): ${why}`);
      return 'UNKNOWN';
    }
    if (STATES.includes(state)) return state as LocalTransactionState;
    this.logger.error(`pocketmq: ${what} of producer group ${this.group} returned ` +
      `${String(state)}, not COMMIT_MESSAGE, ROLLBACK_MESSAGE or UNKNOWN (counted as UNKNOWN)`);
    return 'UNKNOWN';
  }
}
