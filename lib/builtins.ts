/**
 * Node's own modules that a plain open, send and close never use, loaded on first use instead
 * of at import: each one a short-lived process does not load is a millisecond or more of its
 * start (node:crypto is the costliest; node:zlib brings Node's streams).
 */
import { createRequire } from 'node:module';

/** A getter for the built-in module `id`, required the first time it is called. */
export function lazyBuiltin<T>(id: `node:${string}`): () => T {
  let loaded: T | undefined;
  // import.meta is read on first use too: reading it at load loads one more of Node's modules.
  return () => (loaded ??= createRequire(import.meta.url)(id) as T);
}
