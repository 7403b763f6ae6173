/**
 * What the fuzz suites share: run counts and seeds, and the check that a call either returns or
 * throws a PocketMQError with an expected code (anything else, TypeError, RangeError from an
 * out-of-bounds read, a stack overflow, fails the property).
 *
 * Every property has a fixed seed, so `npm test` is deterministic; fast-check prints the seed and
 * the shrink path of a failure, which replay it. `PMQ_FUZZ_RUNS=N` multiplies the run count of
 * each property so that the cheapest one runs N times (long runs); `PMQ_FUZZ_SEED=S` adds S to
 * every seed, to explore other inputs.
 */
import type fc from 'fast-check';
import { vi } from 'vitest';
import { PocketMQError, type ErrorCode } from '../../lib/errors.js';

/** Runs of the cheapest property in a long run: PMQ_FUZZ_RUNS, or 0 for the CI counts. */
const longRuns = Number(process.env.PMQ_FUZZ_RUNS ?? 0);
const seedShift = Number(process.env.PMQ_FUZZ_SEED ?? 0);
/** Run count of the cheapest properties in CI; others scale from it. */
export const BASE_RUNS = 300;
// A long run takes minutes per property: past the suite's 60 s test timeout.
if (longRuns > 0) vi.setConfig({ testTimeout: 24 * 3600 * 1000, hookTimeout: 3600 * 1000 });

/**
 * Parameters of one property: its seed and its CI run count, scaled up by PMQ_FUZZ_RUNS in the
 * same ratio to BASE_RUNS.
 */
export function fuzz(seed: number, numRuns: number): fc.Parameters<unknown> {
  const runs = longRuns > 0 ? Math.max(numRuns, Math.round(longRuns * numRuns / BASE_RUNS))
    : numRuns;
  return { seed: seed + seedShift, numRuns: runs };
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: PocketMQError };

/**
 * Run `fn`: its value, or the PocketMQError it threw when its code is one of `codes`. Any other
 * throw is rethrown with the context, so the property fails on it.
 */
export function coded<T>(codes: readonly ErrorCode[], fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    return { ok: false, error: expectCode(codes, err) };
  }
}

/** The same for a promise. */
export async function codedAsync<T>(codes: readonly ErrorCode[],
  fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return { ok: false, error: expectCode(codes, err) };
  }
}

function expectCode(codes: readonly ErrorCode[], err: unknown): PocketMQError {
  if (err instanceof PocketMQError && codes.includes(err.code)) return err;
  const what = err instanceof PocketMQError ? `PocketMQError ${err.code}`
    : err instanceof Error ? err.constructor.name : typeof err;
  throw new Error(`expected a result or a PocketMQError ${codes.join('/')}, got ${what}: ` +
    `${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
