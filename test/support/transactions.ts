/**
 * Helpers for transactional-message tests: a listener that records what it was asked and
 * answers as the test says, a logger that keeps its lines, and stepping a ManualClock until
 * something happened.
 */
import type { ManualClock } from '../../lib/internal.js';
import type {
  LocalTransactionState, Logger, MessageExt, TransactionListener, TransactionMessage,
} from '../../lib/index.js';
import { until } from './messaging.js';

type Answer<M> = (message: M, call: number) =>
  LocalTransactionState | Promise<LocalTransactionState>;

/** Records every call; `execute` and `check` decide the answers. */
export class TxListener implements TransactionListener {
  readonly executed: { message: TransactionMessage; arg: unknown }[] = [];
  readonly checked: MessageExt[] = [];

  constructor(public execute: Answer<TransactionMessage> = () => 'COMMIT_MESSAGE',
    public check: Answer<MessageExt> = () => 'UNKNOWN') {}

  /** Bodies of the messages checked back, in call order. */
  get checkedBodies(): string[] {
    return this.checked.map((m) => m.body.toString());
  }

  executeLocalTransaction = (message: TransactionMessage, arg: unknown):
    LocalTransactionState | Promise<LocalTransactionState> => {
    this.executed.push({ message, arg });
    return this.execute(message, this.executed.length - 1);
  };

  checkLocalTransaction = (message: MessageExt):
    LocalTransactionState | Promise<LocalTransactionState> => {
    this.checked.push(message);
    return this.check(message, this.checked.length - 1);
  };
}

/** A logger that keeps warnings and errors. */
export function keptLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  return { lines, debug: () => undefined, info: () => undefined,
    warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
}

/** Advance the clock in steps of `stepMs` until `done`, letting the store work in between. */
export async function advanceUntil(clock: ManualClock, stepMs: number,
  done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  await until(async () => {
    if (await done()) return true;
    clock.advance(stepMs);
    return false;
  }, what);
}
