/**
 * Every error pocketmq throws is a PocketMQError with a stable string `code`.
 * Codes are documented one by one in docs/errors.md; never rename one.
 */

export type ErrorCode =
  | 'MESSAGE_TOO_LARGE'
  | 'INVALID_TOPIC'
  | 'INVALID_MESSAGE'
  | 'INVALID_FILTER'
  | 'INVALID_OPTION'
  | 'STORE_LOCKED'
  | 'STORE_CLOSED'
  | 'STORE_READ_ONLY'
  | 'STORE_NOT_FOUND'
  | 'STORE_STOPPED'
  | 'DISK_FULL'
  | 'CORRUPT_DATA'
  | 'IO_ERROR'
  | 'TIMEOUT'
  | 'LIMIT_EXCEEDED'
  | 'BUSY'
  | 'INVALID_STATE'
  | 'NOT_SUPPORTED'
  | 'NOT_MASTER'
  | 'OWNER_UNAVAILABLE'
  | 'PROTOCOL_ERROR'
  | 'ASSERTION_FAILED';

/**
 * Codes a sender may retry: the same call can succeed a moment later (docs/errors.md lists
 * which failures these are). Other codes are retriable only where an error says so
 * (`ErrorFields.retriable`): a transient I/O error that left nothing stored.
 */
const RETRIABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['TIMEOUT', 'BUSY',
  'OWNER_UNAVAILABLE']);

/**
 * errno codes of I/O that may succeed when tried again: the resource was busy or the call was
 * interrupted. Not ENOSPC (DISK_FULL), EIO or anything about the file itself.
 */
export const TRANSIENT_IO_CODES: ReadonlySet<string> = new Set(['EAGAIN', 'EWOULDBLOCK',
  'EBUSY', 'EINTR']);

export interface ErrorFields {
  readonly cause?: unknown;
  /** Retriable whatever the code (true) or never (false); default: by code. */
  readonly retriable?: boolean;
  readonly topic?: string;
  readonly path?: string;
  readonly offset?: number;
  readonly limit?: number;
  readonly actual?: number;
  readonly property?: string;
}

export class PocketMQError extends Error {
  readonly code: ErrorCode;
  declare readonly topic?: string;
  declare readonly path?: string;
  declare readonly offset?: number;
  declare readonly limit?: number;
  declare readonly actual?: number;
  declare readonly property?: string;
  readonly #retriable: boolean | undefined;

  constructor(code: ErrorCode, message: string, fields: ErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'PocketMQError';
    this.code = code;
    if (fields.topic !== undefined) this.topic = fields.topic;
    if (fields.path !== undefined) this.path = fields.path;
    if (fields.offset !== undefined) this.offset = fields.offset;
    if (fields.limit !== undefined) this.limit = fields.limit;
    if (fields.actual !== undefined) this.actual = fields.actual;
    if (fields.property !== undefined) this.property = fields.property;
    this.#retriable = fields.retriable;
  }

  /** True when trying the same operation again may succeed (producers retry only these). */
  get retriable(): boolean {
    return this.#retriable ?? RETRIABLE_CODES.has(this.code);
  }
}

/** The data on disk fails its checksum or its framing before the durable end of the log. */
export class CorruptDataError extends PocketMQError {
  constructor(message: string, fields: ErrorFields = {}) {
    super('CORRUPT_DATA', message, fields);
    this.name = 'CorruptDataError';
  }
}

/** No space left: a segment could not be allocated, or disk use is past the hard ratio. */
export class DiskFullError extends PocketMQError {
  constructor(message: string, fields: ErrorFields = {}) {
    super('DISK_FULL', message, fields);
    this.name = 'DiskFullError';
  }
}

/** An invariant broke: a bug. The store stops writing until it is reopened. */
export class AssertionError extends PocketMQError {
  constructor(message: string, fields: ErrorFields = {}) {
    super('ASSERTION_FAILED', message, fields);
    this.name = 'AssertionError';
  }
}

/**
 * Assertions stay on in production. On hot paths write
 * `if (!cond) failAssertion(\`...\`)` instead when the message is built from values: an
 * argument is built on every call, a message in the branch only when it fails.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Throw the AssertionError of a broken invariant (see `assert`). */
export function failAssertion(message: string): never {
  throw new AssertionError(message);
}

/** Translate a Node fs error into a coded error; ENOSPC and EDQUOT become DISK_FULL. */
export function ioError(err: unknown, what: string, path?: string): PocketMQError {
  if (err instanceof PocketMQError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const fields = path === undefined ? { cause: err } : { cause: err, path };
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DiskFullError(`${what}: no space left on device`, fields);
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new PocketMQError('IO_ERROR', `${what}: ${detail}`, fields);
}

/**
 * `err` made retriable when it is an IO_ERROR of a transient errno (TRANSIENT_IO_CODES), else
 * `err` itself. Only for a failure that left nothing stored and the store running: creating a
 * file an append needs (a consume-queue or index file, the next commit-log segment). Never for
 * a failed write or fdatasync, whose outcome on disk is unknown.
 */
export function retriableIfTransient(err: unknown): unknown {
  if (!(err instanceof PocketMQError) || err.code !== 'IO_ERROR' || err.retriable) return err;
  const errno = (err.cause as NodeJS.ErrnoException | undefined)?.code;
  if (errno === undefined || !TRANSIENT_IO_CODES.has(errno)) return err;
  return new PocketMQError('IO_ERROR', err.message, { cause: err.cause, path: err.path,
    retriable: true });
}

/** Run every step; then throw the first error any of them threw (closing files of a dead disk). */
export function runAll(steps: (() => void)[]): void {
  let failure: { err: unknown } | null = null;
  for (const step of steps) {
    try {
      step();
    } catch (err) {
      failure ??= { err };
    }
  }
  if (failure !== null) throw failure.err;
}
