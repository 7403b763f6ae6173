/**
 * The IndexFile header and geometry: constants, field offsets, the checksummed 64-byte header's
 * encoding and decoding, and the key hash. The file layout is drawn in index-file.ts.
 */
import { CorruptDataError, PocketMQError } from '../errors.js';
import { checksum32, javaHashCode } from './checksum.js';

export const INDEX_HEADER_BYTES = 64;
export const SLOT_BYTES = 4;
export const ENTRY_BYTES = 20;
export const INDEX_MAGIC = 0x58494d50; // "PMIX" little-endian
export const INDEX_FORMAT_VERSION = 1;
/** One index file stays well inside what one Buffer and one mapping can hold. */
export const MAX_INDEX_FILE_BYTES = 2 ** 30;
export const U32 = 2 ** 32;

// Header field offsets.
export const H_MAGIC = 0;
export const H_VERSION = 4;
export const H_BEGIN_TS = 8;
export const H_END_TS = 16;
export const H_BEGIN_PHY = 24;
export const H_END_PHY = 32;
export const H_SLOTS = 40;
export const H_COUNT = 44;
export const H_MAX = 48;
export const H_CHECKSUM = 52;
// Entry field offsets.
export const E_PHY = 4;
export const E_TIME = 12;
export const E_PREV = 16;

if (H_CHECKSUM + 4 > INDEX_HEADER_BYTES || E_PREV + 4 !== ENTRY_BYTES) {
  throw new Error('index-file: layout constants disagree');
}

export interface IndexFileGeometry {
  /** Hash slots per file. @default 65536 */
  readonly hashSlotCount: number;
  /** Entries per file; a full file refuses puts. @default 262144 (about 5.3 MB per file) */
  readonly maxIndexCount: number;
}

export const indexFileDefaults: IndexFileGeometry = Object.freeze({
  hashSlotCount: 65536,
  maxIndexCount: 262144,
});

export function indexFileBytes(g: IndexFileGeometry): number {
  return INDEX_HEADER_BYTES + g.hashSlotCount * SLOT_BYTES + g.maxIndexCount * ENTRY_BYTES;
}

/** Fill in defaults and validate once, naming the bad property. */
export function resolveIndexFileGeometry(
  options: Partial<IndexFileGeometry> = {},
): IndexFileGeometry {
  const g = {
    hashSlotCount: options.hashSlotCount ?? indexFileDefaults.hashSlotCount,
    maxIndexCount: options.maxIndexCount ?? indexFileDefaults.maxIndexCount,
  };
  for (const property of ['hashSlotCount', 'maxIndexCount'] as const) {
    const actual = g[property];
    if (!Number.isSafeInteger(actual) || actual < 1) {
      throw new PocketMQError('INVALID_OPTION', `${property} must be a positive integer`,
        { property, actual });
    }
  }
  const bytes = indexFileBytes(g);
  if (bytes > MAX_INDEX_FILE_BYTES) {
    throw new PocketMQError('INVALID_OPTION',
      `an index file of ${g.hashSlotCount} slots and ${g.maxIndexCount} entries is too large`,
      { property: 'maxIndexCount', limit: MAX_INDEX_FILE_BYTES, actual: bytes });
  }
  return Object.freeze(g);
}

/** RocketMQ's index key hash: |String.hashCode()|, with Integer.MIN_VALUE mapped to 0. */
export function indexKeyHash(key: string): number {
  const h = javaHashCode(key);
  return h === -0x80000000 ? 0 : Math.abs(h);
}

export function getU64(v: DataView, at: number): number {
  return v.getUint32(at + 4, true) * 4294967296 + v.getUint32(at, true);
}

export function setU64(v: DataView, at: number, value: number): void {
  v.setUint32(at, value >>> 0, true);
  v.setUint32(at + 4, Math.floor(value / 4294967296), true);
}

export function isSafeU64(v: DataView, at: number): boolean {
  return v.getUint32(at + 4, true) < 2 ** 21;
}

export interface HeaderState {
  beginTimestamp: number;
  endTimestamp: number;
  beginPhyOffset: number;
  endPhyOffset: number;
  indexCount: number;
}

export const emptyState = (): HeaderState =>
  ({ beginTimestamp: 0, endTimestamp: 0, beginPhyOffset: 0, endPhyOffset: 0, indexCount: 0 });

export function headerChecksum(header: Uint8Array): number {
  const copy = Buffer.from(header.subarray(0, INDEX_HEADER_BYTES));
  copy.writeUInt32LE(0, H_CHECKSUM);
  return checksum32(copy, 0, INDEX_HEADER_BYTES);
}

export function encodeHeader(g: IndexFileGeometry, s: HeaderState): Buffer {
  const out = Buffer.alloc(INDEX_HEADER_BYTES);
  const v = new DataView(out.buffer, out.byteOffset, out.length);
  v.setUint32(H_MAGIC, INDEX_MAGIC, true);
  v.setUint32(H_VERSION, INDEX_FORMAT_VERSION, true);
  setU64(v, H_BEGIN_TS, s.beginTimestamp);
  setU64(v, H_END_TS, s.endTimestamp);
  setU64(v, H_BEGIN_PHY, s.beginPhyOffset);
  setU64(v, H_END_PHY, s.endPhyOffset);
  v.setUint32(H_SLOTS, g.hashSlotCount, true);
  v.setUint32(H_COUNT, s.indexCount, true);
  v.setUint32(H_MAX, g.maxIndexCount, true);
  v.setUint32(H_CHECKSUM, headerChecksum(out), true);
  return out;
}

export function decodeHeader(bytes: Buffer, path: string): [IndexFileGeometry, HeaderState] {
  const corrupt = (what: string): CorruptDataError =>
    new CorruptDataError(`index file ${path}: ${what}`, { path });
  const v = new DataView(bytes.buffer, bytes.byteOffset, INDEX_HEADER_BYTES);
  if (v.getUint32(H_CHECKSUM, true) !== headerChecksum(bytes)) {
    throw corrupt('header fails its checksum');
  }
  if (v.getUint32(H_MAGIC, true) !== INDEX_MAGIC) throw corrupt('bad magic');
  const version = v.getUint32(H_VERSION, true);
  if (version !== INDEX_FORMAT_VERSION) throw corrupt(`unsupported format version ${version}`);
  const g = { hashSlotCount: v.getUint32(H_SLOTS, true), maxIndexCount: v.getUint32(H_MAX, true) };
  if (g.hashSlotCount < 1 || g.maxIndexCount < 1 || indexFileBytes(g) !== bytes.length) {
    throw corrupt(`geometry ${g.hashSlotCount}x${g.maxIndexCount} does not fit ` +
      `${bytes.length} bytes`);
  }
  if (![H_BEGIN_TS, H_END_TS, H_BEGIN_PHY, H_END_PHY].every((at) => isSafeU64(v, at))) {
    throw corrupt('a 64-bit header field is 2^53 or more');
  }
  const s: HeaderState = {
    beginTimestamp: getU64(v, H_BEGIN_TS), endTimestamp: getU64(v, H_END_TS),
    beginPhyOffset: getU64(v, H_BEGIN_PHY), endPhyOffset: getU64(v, H_END_PHY),
    indexCount: v.getUint32(H_COUNT, true),
  };
  const blank = s.beginTimestamp + s.endTimestamp + s.beginPhyOffset + s.endPhyOffset === 0;
  if (s.indexCount > g.maxIndexCount || (s.indexCount === 0 && !blank)
    || s.beginPhyOffset > s.endPhyOffset) {
    throw corrupt('inconsistent entry count or offsets');
  }
  return [Object.freeze(g), s];
}

