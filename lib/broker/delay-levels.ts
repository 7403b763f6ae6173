/**
 * Delay levels: RocketMQ's `messageDelayLevel` string ('1s 5s 10s 30s 1m ... 2h'), parsed once.
 * Units ms, s, m, h, d. Level n (1-based) waits levels[n - 1]; levels above the last clamp to it.
 * Retry backoff uses level 3 + reconsumeTimes, so one option shortens every delay.
 */
import { PocketMQError } from '../errors.js';

export const DEFAULT_MESSAGE_DELAY_LEVEL =
  '1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h';

/** Delay levels at most. */
export const MAX_DELAY_LEVELS = 64;

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000,
  d: 86_400_000 };

export function parseDelayLevels(spec: unknown): number[] {
  const bad = (why: string): PocketMQError => new PocketMQError('INVALID_OPTION',
    `option messageDelayLevel ${why}`, { property: 'messageDelayLevel' });
  if (typeof spec !== 'string') throw bad('must be a string like "1s 5s 10s"');
  const parts = spec.trim().split(/\s+/);
  if (parts.length === 0 || parts[0] === '' || parts.length > MAX_DELAY_LEVELS) {
    throw bad(`must list 1 to ${MAX_DELAY_LEVELS} delays`);
  }
  return parts.map((part) => {
    const match = /^(\d{1,9})(ms|s|m|h|d)$/.exec(part);
    if (match === null) throw bad(`has ${JSON.stringify(part)}: use a number and ms, s, m, h or d`);
    return Number(match[1]) * UNIT_MS[match[2]!]!;
  });
}

/** How long redelivery number `reconsumeTimes + 1` waits: level 3 + reconsumeTimes. */
export function retryDelayMs(levels: readonly number[], reconsumeTimes: number): number {
  const index = Math.min(levels.length - 1, 2 + Math.max(0, reconsumeTimes));
  return levels[index] ?? 0;
}
