/**
 * One JSON metadata file under `<dataDir>/config/` (docs/format.md): topics, consumer offsets
 * and the like, RocketMQ's ConfigManager files. This module owns the framing, the manager of
 * each file owns what `data` holds and checks it in its `parse`.
 *
 * Layout, format version 1 (UTF-8 JSON, one line):
 *
 *   {"version":1,"checksum":"<8 hex digits>","data":<the manager's value>}
 *
 * - `version`: the framing version. Any other value is CORRUPT_DATA: a file from a newer build is
 *   refused rather than misread.
 * - `checksum`: xxHash32 (checksum32) of the UTF-8 bytes of `JSON.stringify(data)`. Reading
 *   parses the file, serializes `data` again and compares, so a flipped digit is caught where the
 *   JSON would still parse. (JSON.stringify of parsed JSON is canonical: same keys in the same
 *   order, shortest round-trip numbers.)
 *
 * Written whole with `writeFileAtomic(Async)` (tmp, fsync, rename, fsync dir): the file holds the
 * old or the new value, never a mix. Saves are serialized: one write at a time, and values saved
 * while one is in flight are coalesced, so only the newest is written next.
 */
import path from 'node:path';
import { assert, CorruptDataError, ioError, PocketMQError } from '../errors.js';
import { checksum32 } from '../store/checksum.js';
import type { IoBackend } from '../store/io/backend.js';

export const CONFIG_FORMAT_VERSION = 1;
/** Largest config file read or written; beyond it a save is LIMIT_EXCEEDED, a load CORRUPT_DATA. */
export const MAX_CONFIG_FILE_BYTES = 64 * 2 ** 20;

export interface JsonConfigFileOptions<T> {
  readonly backend: IoBackend;
  /** The file, usually `<dataDir>/config/<name>.json`; its directory is made on the first save. */
  readonly path: string;
  /** Check and convert `data` as read; throw (anything) when it is not a valid value. */
  readonly parse: (raw: unknown) => T;
  /** What the file holds, for messages: 'topic config', 'consumer offsets'. */
  readonly name: string;
  /**
   * Turn a value into what `data` holds, the inverse of `parse` (for values such as Maps that
   * JSON.stringify cannot write as they are). @default the value itself
   */
  readonly serialize?: (value: T) => unknown;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** The newest value waiting to be written, and everyone waiting for it (or an older one). */
interface Pending {
  bytes: Buffer;
  readonly waiters: Waiter[];
}

export class JsonConfigFile<T> {
  readonly path: string;
  readonly name: string;
  private readonly backend: IoBackend;
  private readonly parse: (raw: unknown) => T;
  private readonly serialize: (value: T) => unknown;
  private pending: Pending | null = null;
  private writing = false;
  private dirMade = false;

  constructor(options: JsonConfigFileOptions<T>) {
    this.backend = options.backend;
    this.path = options.path;
    this.parse = options.parse;
    this.name = options.name;
    this.serialize = options.serialize ?? ((value) => value);
  }

  /** The stored value; null when the file does not exist. Throws CORRUPT_DATA naming the file. */
  load(): T | null {
    const bytes = this.readBytes();
    return bytes === null ? null : this.decode(bytes);
  }

  /**
   * A value from this file's bytes (as `load` reads them; a follower gets its master's copy):
   * CORRUPT_DATA naming the file when they are not a valid file of this kind.
   */
  decode(bytes: Buffer): T {
    if (bytes.length > MAX_CONFIG_FILE_BYTES) {
      throw this.corrupt(`it is ${bytes.length} bytes, more than the ${MAX_CONFIG_FILE_BYTES} a ` +
        'config file may hold');
    }
    let framed: unknown;
    try {
      framed = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw this.corrupt('it is not valid JSON', err);
    }
    const data = this.unframe(framed);
    try {
      return this.parse(data);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      throw this.corrupt(`its content is invalid: ${detail}`, err);
    }
  }

  /**
   * Write `value` atomically, off the main thread. It is serialized when called, so later changes
   * to the object are not written. Resolves once this value or a newer one is durable.
   */
  save(value: T): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = this.encode(value);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      if (this.pending === null) this.pending = { bytes, waiters: [] };
      else this.pending.bytes = bytes;
      this.pending.waiters.push({ resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  /**
   * Write `value` atomically before returning (for shutdown paths). It must not overlap an
   * asynchronous save: both go through the same tmp file. Await `save` first.
   */
  saveSync(value: T): void {
    assert(!this.writing && this.pending === null,
      `${this.name}: saveSync while an asynchronous save of ${this.path} is in flight`);
    const bytes = this.encode(value);
    this.makeDir();
    try {
      this.backend.writeFileAtomic(this.path, bytes);
    } catch (err) {
      throw ioError(err, `cannot save ${this.name}`, this.path);
    }
  }

  /** True while a save is being written or waits to be. */
  get saving(): boolean {
    return this.writing || this.pending !== null;
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      for (let batch = this.pending; batch !== null; batch = this.pending) {
        this.pending = null;
        try {
          this.makeDir();
          await this.backend.writeFileAtomicAsync(this.path, batch.bytes);
        } catch (err) {
          const failure = ioError(err, `cannot save ${this.name}`, this.path);
          for (const w of batch.waiters) w.reject(failure);
          continue;
        }
        for (const w of batch.waiters) w.resolve();
      }
    } finally {
      this.writing = false;
    }
  }

  private encode(value: T): Buffer {
    const data = JSON.stringify(this.serialize(value));
    assert(typeof data === 'string', `${this.name}: the value to save is not JSON`);
    const dataBytes = Buffer.from(data, 'utf8');
    const checksum = hex32(checksum32(dataBytes, 0, dataBytes.length));
    const bytes = Buffer.from(
      `{"version":${CONFIG_FORMAT_VERSION},"checksum":"${checksum}","data":${data}}\n`, 'utf8');
    if (bytes.length > MAX_CONFIG_FILE_BYTES) {
      throw new PocketMQError('LIMIT_EXCEEDED',
        `${this.name} would take ${bytes.length} bytes, more than the ${MAX_CONFIG_FILE_BYTES} ` +
        'a config file may hold', { path: this.path, limit: MAX_CONFIG_FILE_BYTES,
        actual: bytes.length });
    }
    return bytes;
  }

  /** Check version and checksum; the `data` member. */
  private unframe(framed: unknown): unknown {
    if (typeof framed !== 'object' || framed === null || Array.isArray(framed)) {
      throw this.corrupt('it is not a JSON object with version, checksum and data');
    }
    const { version, checksum, data } = framed as Record<string, unknown>;
    if (version !== CONFIG_FORMAT_VERSION) {
      throw this.corrupt(`its format version is ${JSON.stringify(version)}; this build reads ` +
        `version ${CONFIG_FORMAT_VERSION}`);
    }
    if (data === undefined) throw this.corrupt('it has no data member');
    let dataText: string;
    try {
      dataText = JSON.stringify(data);
    } catch (err) {
      // JSON.parse reads any depth; JSON.stringify recurses and overflows the stack.
      throw this.corrupt('its data is nested too deeply to check', err);
    }
    const dataBytes = Buffer.from(dataText, 'utf8');
    const actual = hex32(checksum32(dataBytes, 0, dataBytes.length));
    if (checksum !== actual) {
      throw this.corrupt(`its checksum is ${JSON.stringify(checksum)} but its data hashes to ` +
        `"${actual}"`);
    }
    return data;
  }

  private readBytes(): Buffer | null {
    try {
      return this.backend.readFile(this.path);
    } catch (err) {
      throw ioError(err, `cannot read ${this.name}`, this.path);
    }
  }

  private makeDir(): void {
    if (this.dirMade) return;
    try {
      this.backend.mkdir(path.dirname(this.path));
    } catch (err) {
      throw ioError(err, `cannot make the directory of ${this.name}`, this.path);
    }
    this.dirMade = true;
  }

  private corrupt(why: string, cause?: unknown): CorruptDataError {
    const fields = cause === undefined ? { path: this.path } : { path: this.path, cause };
    return new CorruptDataError(`${this.name} file ${this.path} is corrupt: ${why}`, fields);
  }
}

/**
 * What of a changing value is on disk: changes are counted, and `persist` writes only when some
 * change is not written yet; a call while a write that covers every change is in flight shares
 * that write.
 */
export class PersistTracker {
  private changes = 0;
  private persisted = 0;
  private inFlight: { readonly upTo: number; readonly done: Promise<void> } | null = null;

  /** Count a change to the value. */
  changed(): void {
    this.changes += 1;
  }

  /** Everything so far is on disk (say, just loaded). */
  markPersisted(): void {
    this.persisted = this.changes;
  }

  /** Run `write` unless every change is on disk; resolves once it is. */
  persist(write: () => Promise<void>): Promise<void> {
    const upTo = this.changes;
    if (this.persisted >= upTo) return Promise.resolve();
    if (this.inFlight !== null && this.inFlight.upTo >= upTo) return this.inFlight.done;
    const done = write().then(() => {
      this.persisted = Math.max(this.persisted, upTo);
    });
    const entry = { upTo, done };
    this.inFlight = entry;
    const settle = (): void => {
      if (this.inFlight === entry) this.inFlight = null;
    };
    done.then(settle, settle);
    return done;
  }
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/**
 * A JSON object whose keys and values are integers >= 0 (`{"3": 17}`, what a manager's `parse`
 * reads for a Map<number, number>); throws naming `what` and what its pairs are (`pairs`).
 */
export function parseCountMap(raw: unknown, what: string, pairs: string): Map<number, number> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`${what}: expected {<${pairs}>}`);
  }
  const map = new Map<number, number>();
  for (const [key, value] of Object.entries(raw)) {
    const n = Number(key);
    if (!isCount(n) || String(n) !== key || !isCount(value)) {
      throw new Error(`${what}: ${JSON.stringify(key)} -> ${JSON.stringify(value)} is not ` +
        `<${pairs}>`);
    }
    map.set(n, value);
  }
  return map;
}

function hex32(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}
