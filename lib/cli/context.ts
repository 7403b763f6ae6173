/**
 * What every command shares: the `--dir` (or POCKETMQ_DIR), `--json` and `--verbose` options,
 * the exit codes, the errors the command itself raises, and opening the store the right way.
 * Read-only commands always use `openReadOnly` (no lock: they work while an application owns
 * the store); changing commands use `open` and turn STORE_LOCKED into a message that says what
 * to do.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { PocketMQError } from '../errors.js';
import { ownerSocketAddress } from '../remote/owner-socket.js';
import { MessageStore } from '../message-store.js';

/** Exit codes, documented in docs/cli.md. */
export const EXIT = Object.freeze({
  /** Done; `verify`: the store is healthy. */
  OK: 0,
  /** The command failed, or `verify` found damage. */
  FAILED: 1,
  /** Bad usage, or no store in the directory. */
  USAGE: 2,
  /** A changing command found the store open in another process. */
  LOCKED: 3,
});

export interface CommonOptions {
  readonly dir: string;
  readonly json?: boolean | undefined;
  readonly verbose?: boolean | undefined;
}

/** An error of the command itself (not of the library): printed as `pocketmq: <message>`. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.FAILED) {
    super(message);
    this.name = 'CliError';
  }
}

/** The environment variable `--dir` defaults to. */
export const DIR_ENV = 'POCKETMQ_DIR';

function dirOption(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('expected a directory, got nothing');
  return value;
}

/** Add `--dir` (default: $POCKETMQ_DIR), `--json` and `--verbose` to a command. */
export function withCommonOptions(command: Command): Command {
  return command
    .addOption(new Option('-d, --dir <dataDir>', 'the store\'s data directory')
      .env(DIR_ENV).argParser(dirOption).makeOptionMandatory())
    .option('--json', 'print one JSON document on stdout (nothing else goes there)')
    .option('--verbose', 'print stack traces of errors');
}

/** A commander parser for an integer option in [min, max]. */
export function intOption(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value: string) => {
    const n = /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** A commander parser for a time: ms since the epoch, or an ISO 8601 date. */
export function timeOption(value: string): number {
  const trimmed = value.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) : Date.parse(trimmed);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new InvalidArgumentError('expected ms since the epoch or an ISO 8601 date');
  }
  return ms;
}

/** Open `dir` read-only, run `fn`, close. */
export async function withReadOnlyStore<T>(dir: string,
  fn: (store: MessageStore) => Promise<T>): Promise<T> {
  const store = await MessageStore.openReadOnly(dir);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Open `dir` as its owner, run `fn`, close. A directory without a store is refused rather than
 * created (an admin command must not make a store at a mistyped path); the open keeps the
 * segment and ConsumeQueue file sizes the files were made with.
 */
export async function withOwnedStore<T>(dir: string,
  fn: (store: MessageStore) => Promise<T>): Promise<T> {
  if (!fs.existsSync(path.join(dir, 'commitlog')) && !fs.existsSync(path.join(dir, 'checkpoint'))) {
    throw new PocketMQError('STORE_NOT_FOUND', `${path.resolve(dir)} holds no pocketmq store`,
      { path: path.resolve(dir) });
  }
  let store: MessageStore;
  try {
    store = await MessageStore.open(dir);
  } catch (err) {
    if (!(err instanceof PocketMQError && err.code === 'STORE_LOCKED')) throw err;
    // An owner opened with multiProcess serves its store: the command goes through it.
    if (!ownerServes(dir)) throw lockedError(dir, err);
    store = await MessageStore.open(dir, { multiProcess: true });
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Whether the directory's owner serves other processes (its owner socket is there). */
function ownerServes(dir: string): boolean {
  if (process.platform === 'win32') return true;
  return fs.existsSync(ownerSocketAddress(dir));
}

function lockedError(dir: string, cause: PocketMQError): CliError {
  const pid = ownerPid(dir);
  const who = pid === null ? 'another process' : `another process (pid ${pid})`;
  const error = new CliError(`the store in ${dir} is open in ${who}; stop it first, or use a ` +
    'read-only command (topics, browse, stats, ...), which works while it runs', EXIT.LOCKED);
  error.cause = cause;
  return error;
}

/** The pid the lock file (`<dir>/lock`) names, if it names one. */
function ownerPid(dir: string): number | null {
  try {
    const text = fs.readFileSync(path.join(dir, 'lock'), 'utf8').trim();
    return /^[1-9]\d{0,9}$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}
