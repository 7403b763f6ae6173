/**
 * Helpers of the simulated disk (sim-backend.ts): errors shaped as Node's, a seeded random
 * sequence, and path normalization.
 */
import path from 'node:path';
import { ioError } from '../../lib/errors.js';

const ERRNO: Readonly<Record<string, number>> = {
  ENOENT: -2, EINTR: -4, EIO: -5, EBADF: -9, EAGAIN: -11, EBUSY: -16, EEXIST: -17, ENOTDIR: -20,
  EISDIR: -21, ENOSPC: -28,
};

export function nodeError(code: string, syscall: string, at: string, detail = 'simulated'):
NodeJS.ErrnoException {
  const err = new Error(`${code}: ${detail}, ${syscall} '${at}'`);
  return Object.assign(err, { code, errno: ERRNO[code], syscall, path: at });
}

export function fail(code: string, syscall: string, what: string, at: string,
  detail?: string): never {
  throw ioError(nodeError(code, syscall, at, detail), what, at);
}

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normalize(p: string): string {
  const n = path.normalize(p);
  return n.length > 1 && n.endsWith(path.sep) ? n.slice(0, -1) : n;
}

export function isRoot(p: string): boolean {
  return path.dirname(p) === p;
}

