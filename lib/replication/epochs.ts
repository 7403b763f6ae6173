/**
 * Master epochs (Kafka's leader epochs, RocketMQ's EpochFile): every life of a master (each open
 * with a master role, and each promotion) starts a new epoch at the end of its log then. Kept in
 * `<dataDir>/replication/epochs.json`, written atomically before the first append of an epoch:
 *
 *   {"version":1,"epochs":[[<epoch>,<start offset>],...]}   epochs and starts ascending
 *
 * A follower copies its master's entries as it replicates (one for every offset it holds). On
 * connect the two lists tell where the logs part, without comparing records: for the largest
 * epoch both hold (same number, same start), the logs agree up to the smaller of where that
 * epoch ends on each side (`epochCut`).
 */
import path from 'node:path';
import { CorruptDataError } from '../errors.js';
import { limits } from '../limits.js';
import type { IoBackend } from '../store/io/backend.js';
import { replicationDir, STATE_VERSION, type FileReader } from './state.js';

/** One master life: its number and the log offset it started writing at. */
export interface Epoch {
  readonly epoch: number;
  readonly start: number;
}

export function epochsPath(dir: string): string {
  return path.join(replicationDir(dir), 'epochs.json');
}

/** The epoch list of a data directory; empty when there is no file (older data). */
export function readEpochs(backend: FileReader, dir: string): Epoch[] {
  const file = epochsPath(dir);
  const bytes = backend.readFile(file);
  if (bytes === null) return [];
  const damaged = (why: string): CorruptDataError =>
    new CorruptDataError(`the epoch file ${file} is damaged: ${why}`, { path: file });
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw damaged('not JSON');
  }
  const value = raw as { version?: unknown; epochs?: unknown } | null;
  if (value === null || typeof value !== 'object' || value.version !== STATE_VERSION ||
    !Array.isArray(value.epochs)) {
    throw damaged(`not a version ${STATE_VERSION} epoch list`);
  }
  const list: Epoch[] = [];
  for (const item of value.epochs as unknown[]) {
    if (!Array.isArray(item) || item.length !== 2 || !item.every(Number.isSafeInteger) ||
      (item[0] as number) < 0 || (item[1] as number) < 0) {
      throw damaged(`entry ${list.length} is not [epoch, start]`);
    }
    const entry = { epoch: item[0] as number, start: item[1] as number };
    const prev = list.at(-1);
    if (prev !== undefined && (entry.epoch <= prev.epoch || entry.start <= prev.start)) {
      throw damaged(`entry ${list.length} does not follow the one before`);
    }
    list.push(entry);
  }
  return list;
}

function encodeEpochs(list: readonly Epoch[]): Buffer {
  const epochs = list.map((e) => [e.epoch, e.start]);
  return Buffer.from(`${JSON.stringify({ version: STATE_VERSION, epochs })}\n`);
}

/** Write the list (tmp, fsync, rename); `sync` blocks for it (at open and promotion only). */
export async function writeEpochs(backend: IoBackend, dir: string, list: readonly Epoch[],
  sync = false): Promise<void> {
  backend.mkdir(replicationDir(dir));
  if (sync) backend.writeFileAtomic(epochsPath(dir), encodeEpochs(list));
  else await backend.writeFileAtomicAsync(epochsPath(dir), encodeEpochs(list));
}

/**
 * The list with a new master life starting at `end` (the log's end now): entries starting at
 * or past `end` held no record that survived and are replaced; entries wholly below the log's
 * first offset `min` are dropped but the last of them, and the oldest past the limit.
 */
export function beginEpoch(list: readonly Epoch[], end: number, min: number): Epoch[] {
  const kept = list.filter((e) => e.start < end);
  const next = { epoch: (list.at(-1)?.epoch ?? 0) + 1, start: end };
  let first = 0;
  while (first + 1 < kept.length && kept[first + 1]!.start <= min) first++;
  const out = [...kept.slice(first), next];
  return out.slice(Math.max(0, out.length - limits.maxReplicationEpochs));
}

/** Where epoch `i` of `list` ends in a log ending at `end`: the next epoch's start, or `end`. */
function endOf(list: readonly Epoch[], i: number, end: number): number {
  return Math.min(list[i + 1]?.start ?? end, end);
}

/**
 * Where a follower's log (its epochs, ending at `followerEnd`) stops agreeing with a master's:
 * for the largest epoch both lists hold, the smaller of its ends on the two sides (and never
 * past the follower's end). Null when they share no epoch: the epochs cannot tell.
 */
export function epochCut(follower: readonly Epoch[], followerEnd: number,
  master: readonly Epoch[], masterEnd: number): number | null {
  for (let i = follower.length - 1; i >= 0; i--) {
    const f = follower[i]!;
    if (f.start > followerEnd) continue;
    const m = master.findIndex((e) => e.epoch === f.epoch);
    if (m < 0) continue;
    if (master[m]!.start !== f.start) continue; // two lives with one number: not this one
    return Math.min(endOf(follower, i, followerEnd), endOf(master, m, masterEnd));
  }
  return null;
}
