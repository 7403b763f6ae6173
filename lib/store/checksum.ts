/**
 * Checksums and hashes used on disk.
 * - `checksum32`: xxHash32 (seed 0) of a byte range, for records, checkpoint and metadata.
 *   Short ranges (every small record) are hashed in JS through a DataView on the caller's
 *   buffer: no copy, no allocation, about 3x faster than a call into wasm at 200 bytes. Long
 *   ranges go to xxhash-wasm. Both compute the standard xxh32; tests hold them to each other.
 *   xxhash-wasm is imported and its wasm compiled asynchronously (no top-level await, so
 *   `require('pocketmq')` works from CommonJS), on the first long range hashed, not at load
 *   (a process that hashes only small records never pays for it: 1.5-2.5 ms of a short
 *   process's start); until it is ready long ranges go to the JS loop (the same value, about
 *   20% slower above 16 KiB).
 * - `javaHashCode`: Java's String.hashCode over UTF-16 code units, RocketMQ's tag code and
 *   index key hash, so tag codes mean the same as in RocketMQ.
 */
import { assert } from '../errors.js';

type H32Raw = (input: Uint8Array, seed?: number) => number;

/** Null until xxhash-wasm is compiled (or when it failed to compile: then JS hashes all). */
let h32Raw: H32Raw | null = null;
let wasmProblem: unknown = null;
/** The import and compile of xxhash-wasm, once started (process-wide, as the module is). */
let wasmReady: Promise<void> | null = null;

/**
 * Starts loading xxhash-wasm if nothing did yet; resolves once long ranges hash in wasm. Never
 * rejects (the JS loop stays as a fallback).
 */
export function checksumReady(): Promise<void> {
  wasmReady ??= import('xxhash-wasm').then((m) => m.default()).then((hasher) => {
    h32Raw = hasher.h32Raw;
  }, (err: unknown) => {
    wasmProblem = err;
  });
  return wasmReady;
}

/** Above this many bytes the wasm hash wins over the JS loop. */
const WASM_FROM_BYTES = 4096;

/** xxh32 (seed 0) of [start, end) in JS; `dv` views the same memory as `buf`. */
export function xxh32(dv: DataView, buf: Uint8Array, start: number, end: number): number {
  // The primes are constants of the function, not of the module: a bundler turns a module's
  // `const` into `var`, and V8 then loads each (most are not small integers, so boxed) from
  // the module's context on every use in the loop instead of folding it (the hash ran at half
  // speed in the bundled build).
  const P1 = 0x9e3779b1 | 0;
  const P2 = 0x85ebca77 | 0;
  const P3 = 0xc2b2ae3d | 0;
  const P4 = 0x27d4eb2f | 0;
  const P5 = 0x165667b1 | 0;
  let p = start;
  let h: number;
  const len = end - start;
  if (len >= 16) {
    let v1 = (P1 + P2) | 0;
    let v2 = P2;
    let v3 = 0;
    let v4 = -P1 | 0;
    const limit = end - 16;
    do {
      let x = (v1 + Math.imul(dv.getInt32(p, true), P2)) | 0;
      v1 = Math.imul((x << 13) | (x >>> 19), P1);
      x = (v2 + Math.imul(dv.getInt32(p + 4, true), P2)) | 0;
      v2 = Math.imul((x << 13) | (x >>> 19), P1);
      x = (v3 + Math.imul(dv.getInt32(p + 8, true), P2)) | 0;
      v3 = Math.imul((x << 13) | (x >>> 19), P1);
      x = (v4 + Math.imul(dv.getInt32(p + 12, true), P2)) | 0;
      v4 = Math.imul((x << 13) | (x >>> 19), P1);
      p += 16;
    } while (p <= limit);
    h = (((v1 << 1) | (v1 >>> 31)) + ((v2 << 7) | (v2 >>> 25)) + ((v3 << 12) | (v3 >>> 20)) +
      ((v4 << 18) | (v4 >>> 14))) | 0;
  } else {
    h = P5;
  }
  h = (h + len) | 0;
  while (p + 4 <= end) {
    const x = (h + Math.imul(dv.getInt32(p, true), P3)) | 0;
    h = Math.imul((x << 17) | (x >>> 15), P4);
    p += 4;
  }
  while (p < end) {
    const x = (h + Math.imul(buf[p]!, P5)) | 0;
    h = Math.imul((x << 11) | (x >>> 21), P1);
    p++;
  }
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** xxh32 (seed 0) of [start, end); pass `dv` (a DataView on `buf`'s bytes) on hot paths. */
export function checksum32(buf: Uint8Array, start: number, end: number, dv?: DataView): number {
  if (end - start > WASM_FROM_BYTES) {
    if (h32Raw !== null) return h32Raw(buf.subarray(start, end), 0) >>> 0;
    if (wasmReady === null) void checksumReady();
  }
  return xxh32(dv ?? new DataView(buf.buffer, buf.byteOffset, buf.byteLength), buf, start, end);
}

/** The wasm implementation, for tests that hold the two to each other; after checksumReady. */
export function checksum32Wasm(buf: Uint8Array, start: number, end: number): number {
  assert(h32Raw !== null,
    `xxhash-wasm is not ready: ${String(wasmProblem ?? 'await checksumReady()')}`);
  return h32Raw(buf.subarray(start, end), 0) >>> 0;
}

export function javaHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}
