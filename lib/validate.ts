/**
 * Checks for option objects, shared by every layer's resolver: each names the
 * bad property in an INVALID_OPTION error, with the value it got and the range it takes.
 */
import { PocketMQError } from './errors.js';

/** INVALID_OPTION naming `property`: "option <property> <message>". */
export function invalidOption(property: string, message: string): PocketMQError {
  return new PocketMQError('INVALID_OPTION', `option ${property} ${message}`, { property });
}

/** The options object itself, without its undefined fields; INVALID_OPTION if not an object. */
export function optionsRecord(options: unknown, what = 'options'): Record<string, unknown> {
  if (options === null || typeof options !== 'object') {
    throw new PocketMQError('INVALID_OPTION', `${what} must be an object`, { property: what });
  }
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

/** INVALID_OPTION for a key that is not in `known` (a misspelt option must not be ignored). */
export function checkKnownOptions(o: Record<string, unknown>, known: readonly string[],
  what: string): void {
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) throw invalidOption(key, `is not ${what}`);
  }
}

/** An integer option in [min, max], or `fallback` when it is not given. */
export function intOption(o: Record<string, unknown>, key: string, fallback: number,
  min: number, max: number): number {
  const v = o[key] ?? fallback;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
    throw invalidOption(key, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
  return v as number;
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
  const v = o[key] ?? fallback;
  if (typeof v !== 'boolean') throw invalidOption(key, `must be a boolean, got ${String(v)}`);
  return v;
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
