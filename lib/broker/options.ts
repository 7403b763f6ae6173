/**
 * The broker's options, as `MessageStore.open` takes them beside the store options: one frozen
 * defaults object and one resolver that checks them once and names the bad property.
 */
import { limits } from '../limits.js';
import type { ResolvedStoreOptions } from '../store/options.js';
import { boolOption, intOption } from '../validate.js';
import type { BrokerOptions } from './core.js';
import { DEFAULT_MESSAGE_DELAY_LEVEL, parseDelayLevels } from './delay-levels.js';

export const brokerDefaults = Object.freeze({
  messageDelayLevel: DEFAULT_MESSAGE_DELAY_LEVEL,
  persistConsumerOffsetIntervalMs: 5000,
  trace: false,
  /** The latest `deliverAt`, as a distance from now: 30 days. */
  timerMaxDelayMs: 30 * 86_400_000,
  /** Check-back: RocketMQ's transactionTimeOut, a shorter interval, transactionCheckMax. */
  transactionTimeoutMs: 6000,
  transactionCheckIntervalMs: 5000,
  transactionCheckMax: 15,
});

/** What the broker takes of the store's options. */
type FromStore = 'defaultTopicQueueNums' | 'clock' | 'logger';

export type ResolvedBrokerOptions = Omit<BrokerOptions, FromStore>;

/** The broker options from `o` (defaults where it has none); INVALID_OPTION names a bad one. */
export function resolveBrokerOptions(o: Readonly<Record<string, unknown>>): ResolvedBrokerOptions {
  const d = brokerDefaults;
  const maxMs = limits.maxTransactionTimingMs;
  return Object.freeze({
    trace: boolOption(o, 'trace', d.trace),
    delayLevels: parseDelayLevels(o.messageDelayLevel ?? d.messageDelayLevel),
    persistConsumerOffsetIntervalMs: intOption(o, 'persistConsumerOffsetIntervalMs',
      d.persistConsumerOffsetIntervalMs, 1, 3_600_000),
    timerMaxDelayMs: intOption(o, 'timerMaxDelayMs', d.timerMaxDelayMs, 1,
      limits.maxTimerDelayMs),
    transactionTimeoutMs: intOption(o, 'transactionTimeoutMs', d.transactionTimeoutMs, 0, maxMs),
    transactionCheckIntervalMs: intOption(o, 'transactionCheckIntervalMs',
      d.transactionCheckIntervalMs, 1, maxMs),
    transactionCheckMax: intOption(o, 'transactionCheckMax', d.transactionCheckMax, 1,
      limits.maxTransactionCheckMax),
  });
}

/** The whole BrokerOptions: `resolved` on a store opened with `store`. */
export function brokerOptionsOn(resolved: ResolvedBrokerOptions,
  store: Pick<ResolvedStoreOptions, FromStore>): BrokerOptions {
  return { ...resolved, defaultTopicQueueNums: store.defaultTopicQueueNums, clock: store.clock,
    logger: store.logger };
}
