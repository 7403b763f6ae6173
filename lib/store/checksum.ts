/**
 * Checksums and hashes used on disk.
 * - `checksum32`: xxHash32 (seed 0) of a byte range, for records, checkpoint and metadata.
 * - `javaHashCode`: Java's String.hashCode over UTF-16 code units, RocketMQ's tag code and
 *   index key hash, so tag codes mean the same as in RocketMQ.
 */
import xxhash from 'xxhash-wasm';

const { h32Raw } = await xxhash();

export function checksum32(buf: Uint8Array, start: number, end: number): number {
  return h32Raw(buf.subarray(start, end), 0) >>> 0;
}

export function javaHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}
