/**
 * How an append ended, the one status type of the store's write path (the log, the group
 * commit, the follower wait and the engine): the record is stored in every case.
 * - `PUT_OK`: stored (and, under SYNC_FLUSH, flushed; under SYNC_MASTER, on a follower).
 * - `FLUSH_DISK_TIMEOUT`: SYNC_FLUSH, the fdatasync did not end within `syncFlushTimeoutMs`.
 * - `FLUSH_SLAVE_TIMEOUT`: SYNC_MASTER, no follower acknowledged it within `syncFlushTimeoutMs`.
 * - `SLAVE_NOT_AVAILABLE`: SYNC_MASTER, no follower connected, or the best one too far behind.
 * The log itself only says PUT_OK; the waits that follow it narrow it to one of the others.
 */
export type PutStatus =
  'PUT_OK' | 'FLUSH_DISK_TIMEOUT' | 'FLUSH_SLAVE_TIMEOUT' | 'SLAVE_NOT_AVAILABLE';
