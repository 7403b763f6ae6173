/**
 * Node's own modules that a plain open, send and close never use, loaded on first use instead
 * of at import: each one a short-lived process does not load is a millisecond or more of its
 * start (node:crypto is the costliest; node:zlib brings Node's streams). And a clock for
 * durations that loads none.
 */
import { createRequire } from 'node:module';

/** A getter for the built-in module `id`, required the first time it is called. */
export function lazyBuiltin<T>(id: `node:${string}`): () => T {
  let loaded: T | undefined;
  // import.meta is read on first use too: reading it at load loads one more of Node's modules.
  return () => (loaded ??= createRequire(import.meta.url)(id) as T);
}

/**
 * Milliseconds since an arbitrary point in the past, for durations (latency histograms, trace
 * costs), as `performance.now()` gives them but without its cost at first use: on Node 20 the
 * global `performance` loads node:perf_hooks and its timing modules, about 0.6 ms of a short
 * process's first send. `process.hrtime()` is part of Node's start and costs the same per call.
 */
export function monotonicMs(): number {
  const [seconds, nanos] = process.hrtime();
  return seconds * 1e3 + nanos / 1e6;
}
