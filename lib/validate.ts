/**
 * Checks for option objects, shared by every layer's resolver: each names the bad property in
 * an INVALID_OPTION error, with the value it got and, for a number out of range, the bound it
 * crossed (`limit`) and the number given (`actual`).
 *
 * The `check*` functions check one value as it is; the `*Option` functions read a key of an
 * options record (see `optionsRecord`) and take `fallback` when the key is absent or null.
 */
import { PocketMQError } from './errors.js';

/**
 * INVALID_OPTION naming `property`: "option <property> <message>"; `limit` (and `actual`, when
 * it is a number) go into the details, for a number out of range.
 */
export function invalidOption(property: string, message: string, limit?: number,
  actual?: unknown): PocketMQError {
  const fields = limit === undefined ? { property }
    : { property, limit, ...(typeof actual === 'number' ? { actual } : {}) };
  return new PocketMQError('INVALID_OPTION', `option ${property} ${message}`, fields);
}

/** A value as an error message shows it: strings quoted, so "5000" differs from 5000. */
function shown(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** The options object itself, without its undefined fields; INVALID_OPTION if not an object. */
export function optionsRecord(options: unknown, what = 'options'): Record<string, unknown> {
  if (options === null || typeof options !== 'object') {
    throw new PocketMQError('INVALID_OPTION', `${what} must be an object`, { property: what });
  }
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

/**
 * INVALID_OPTION for a key that is not in `known` (a misspelt option must not be ignored):
 * "option <key> is not <what>".
 */
export function checkKnownOptions(o: Record<string, unknown>, known: readonly string[],
  what: string): void {
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw invalidOption(key, `is not ${what}`);
  }
}

/** An integer in [min, max]; `note` follows the range in the message (why the bound is so). */
export function checkInt(key: string, v: unknown, min: number, max: number, note = ''): number {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
    throw invalidOption(key, `must be an integer in [${min}, ${max}]${note}, got ${shown(v)}`,
      (v as number) < min ? min : max, v);
  }
  return v as number;
}

/** A number in (0, 1]. */
export function checkRatio(key: string, v: unknown): number {
  if (typeof v !== 'number' || !(v > 0 && v <= 1)) {
    throw invalidOption(key, `must be in (0, 1], got ${String(v)}`);
  }
  return v;
}

/** A boolean. */
export function checkBool(key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalidOption(key, `must be a boolean, got ${shown(v)}`);
  return v;
}

/** An object with a function under each of `names` (a backend, a clock, a logger). */
export function checkMethods<T>(key: string, v: unknown, names: readonly string[]): T {
  const o = v as Record<string, unknown> | null;
  if (o === null || typeof o !== 'object' || names.some((n) => typeof o[n] !== 'function')) {
    throw invalidOption(key, `must be an object with the methods ${names.join(', ')}`);
  }
  return v as T;
}

/** A function, or null when it is null or not given. */
export function checkFunctionOrNull<T>(key: string, v: unknown): T | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'function') throw invalidOption(key, 'must be a function');
  return v as T;
}

/** An integer option in [min, max], or `fallback` when it is not given. */
export function intOption(o: Record<string, unknown>, key: string, fallback: number,
  min: number, max: number, note = ''): number {
  return checkInt(key, o[key] ?? fallback, min, max, note);
}

/** One of `values`, or `fallback` when it is not given. */
export function oneOfOption<T extends string>(o: Record<string, unknown>, key: string,
  fallback: T, values: readonly T[]): T {
  const v = o[key] ?? fallback;
  if (!values.includes(v as T)) {
    throw invalidOption(key, `must be one of ${values.join(', ')}, got ${String(v)}`);
  }
  return v as T;
}

/** A boolean option, or `fallback` when it is not given. */
export function boolOption(o: Record<string, unknown>, key: string, fallback: boolean): boolean {
  return checkBool(key, o[key] ?? fallback);
}

/** A string matching `pattern`, or `fallback` when it is not given. */
export function patternOption(o: Record<string, unknown>, key: string, fallback: string,
  pattern: RegExp): string {
  const v = o[key] ?? fallback;
  if (typeof v !== 'string' || !pattern.test(v)) {
    throw invalidOption(key, `must match ${pattern.source}, got ${JSON.stringify(v)}`);
  }
  return v;
}
