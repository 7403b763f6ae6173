/**
 * Every limit of pocketmq in one place. Units last in names.
 * Relations between the limits are checked when this module loads.
 */

export const limits = Object.freeze({
  /** Largest body a record may carry (RocketMQ's maxMessageSize default, 4 MiB). */
  maxBodyBytes: 4 * 2 ** 20,
  /** Largest encoded properties block (u16 length field). */
  maxPropertiesBytes: 0xffff,
  /** Topic names: ^[A-Za-z0-9_%|-]{1,127}$, so one length byte suffices. */
  maxTopicBytes: 127,
  /** Queues per topic; queue ids are stored as u16. */
  maxQueuesPerTopic: 1024,
  /** Records in one atomic batch append. */
  maxBatchRecords: 4096,
  /** Bytes in one atomic batch append. */
  maxBatchBytes: 16 * 2 ** 20,
  /**
   * SYNC_FLUSH appends waiting for a flush at once; beyond it appends are refused (BUSY). The
   * largest value of the store option maxPendingFlushRequests (its default).
   */
  maxPendingFlushRequests: 1_000_000,
  /** reconsumeTimes is stored as u16. */
  maxReconsumeTimes: 0xffff,
  /** Smallest and largest commit-log segment. */
  minSegmentBytes: 64 * 1024,
  maxSegmentBytes: 2 ** 30,
  /** Recovery yields to the event loop after checking this many bytes. */
  recoveryYieldBytes: 32 * 2 ** 20,
  /**
   * ASYNC_FLUSH appends resolved at once per event-loop turn; later ones resolve at the turn's
   * end, so a producer awaiting each send still lets I/O and timers run.
   */
  appendsPerTurn: 2048,
  /** Problems one verify report lists (it counts them all). */
  verifyMaxProblems: 1000,
  /**
   * Disk space a file allocation leaves free for the checkpoint and config files: one that
   * would leave less fails with DISK_FULL at once (lib/store/io/allocated-file.ts).
   */
  allocationReserveBytes: 2 ** 20,
  /**
   * Index candidates one queryMessage reads beyond its maxNum: entries of the key's hash whose
   * record turns out to be of another key, or stored just outside the time range (the index
   * keeps seconds). Past maxNum + this many it returns what it found.
   */
  queryExtraScanRecords: 16_384,
  /** Messages one `browse` returns at most. */
  maxBrowseMessages: 10_000,
  /** Appends staged in one write window before it is published early. */
  writeWindowBytes: 4 * 2 ** 20,
  /** Message trace: events held in memory before they are written; more are dropped. */
  traceBufferEvents: 16_384,
  /** Message trace: events in one trace record (it indexes each msgId it holds). */
  traceRecordEvents: 64,
  /** Message trace: body bytes of one trace record (a smaller maxMessageSize lowers it). */
  traceRecordBytes: 256 * 1024,
  /** Message trace: trace records one queryTrace reads at most, newest first. */
  traceQueryRecords: 1024,
  /** Push consumers: a fetch that found nothing waits this long for an arrival, then again. */
  longPollMs: 15_000,
  /** Push consumers: a fetch loop that failed starts again after this long. */
  fetchRetryDelayMs: 3000,
  /** Push consumers: a fetch loop yields to the event loop after this many fetches in a row. */
  fetchesPerTurn: 8,
  /** A failed move to a dead-letter queue is tried again after this long. */
  deadLetterRetryMs: 5000,
  /** A failed delivery of a scheduled message is tried again after this long (RocketMQ: 10 s). */
  scheduleRetryMs: 10_000,
  /**
   * Timer messages: those due within this window are held in memory (three numbers each); the
   * rest stay on disk, found by a scan of the timer queue every half window.
   */
  timerWindowMs: 60_000,
  /**
   * Several processes: the largest frame on the owner's socket (a batch is at most
   * maxBatchBytes of records; a frame carries its bodies and some JSON around them).
   */
  maxFrameBytes: 64 * 2 ** 20,
  /** Several processes: requests one client connection may have in flight at once. */
  maxRequestsInFlight: 65_536,
  /** Several processes: a client uses a topic's queue count this long before it asks again. */
  topicRouteCacheMs: 1000,
  /** Several processes: a client waits this long for the owner's welcome before it gives up. */
  connectTimeoutMs: 5000,
  /**
   * Worker threads: the shared write window (lib/remote/write-window.ts) holds this many
   * encoded records (a power of two) of at most writeWindowEntryBytes each; a larger record
   * goes over the owner socket.
   */
  writeWindowEntries: 2048,
  writeWindowEntryBytes: 2048,
  /** Worker threads: producer threads that may share the write window at once. */
  writeWindowLanes: 32,
  /** Worker threads: sends one thread may have in the write window at once. */
  writeWindowLaneSlots: 1024,
  /**
   * Worker threads: a reserved write-window entry still unwritten after this long (its thread
   * died, or hangs) is skipped, so the others go on.
   */
  writeWindowHoleMs: 1000,
  /** Worker threads: how long a client thread waits for the owner's window when it connects. */
  writeWindowAttachMs: 500,
  /** The largest `timerMaxDelayMs` a store takes: one year. */
  maxTimerDelayMs: 365 * 86_400_000,
  /** Timer messages: queue entries a scan reads before it yields to the event loop. */
  timerScanChunk: 65_536,
  /**
   * Transactions: half messages one check-back round reads and asks about at most; also the
   * most check-back calls in flight at once (a call that never returns holds its place).
   */
  transactionChecksPerRound: 1024,
  /** Transactions: half-queue entries one check-back round looks at, at most. */
  transactionScanEntries: 65_536,
  /** Transactions: the largest `transactionTimeoutMs` and `transactionCheckIntervalMs`: a day. */
  maxTransactionTimingMs: 86_400_000,
  /** Transactions: the largest `transactionCheckMax`. */
  maxTransactionCheckMax: 1000,
  /** Transactional producers (those with a listener) registered in one group at once. */
  maxTransactionalProducersPerGroup: 1024,
  /** Consumer instances in one group at once, in one broker. */
  maxConsumersPerGroup: 1024,
  /** Parsed message filters (tag and SQL92 expressions) the broker keeps for reuse. */
  filterCacheEntries: 256,
  /** Topic names remembered as checked, so a send skips the pattern test. */
  topicNameCacheEntries: 4096,
  /** Dead letters one read of a resend takes from the DLQ. */
  dlqResendReadRecords: 256,
  /**
   * Replication: the largest frame a peer may send (a DATA frame holds whole records, so at
   * least the largest record; see lib/replication/protocol.ts). A larger length closes the
   * connection.
   */
  maxReplicationFrameBytes: 8 * 2 ** 20,
  /** Replication: the largest frame before a peer has authenticated (its HELLO). */
  maxReplicationHelloBytes: 4096,
  /** Replication: log bytes a master ships per DATA frame (whole records; RocketMQ: 32 KiB). */
  replicationBatchBytes: 256 * 1024,
  /** Replication: bytes a master queues on one follower's socket before it waits for drain. */
  replicationSendBufferBytes: 4 * 2 ** 20,
  /** Replication: bytes a follower holds received and not yet applied before it pauses reading. */
  replicationReceiveBufferBytes: 16 * 2 ** 20,
  /** Replication: followers connected to one master at once; more are refused. */
  maxReplicationConnections: 16,
  /** Replication: a connection that has not said HELLO (or been answered) within this is closed. */
  replicationHandshakeTimeoutMs: 5000,
  /** Replication: each side sends at least one frame this often (heartbeat, acknowledgement). */
  replicationHeartbeatMs: 1000,
  /** Replication: a connection that received nothing for this long is closed. */
  replicationIdleTimeoutMs: 15_000,
  /** Replication: a follower's first reconnect delay, doubled after each failure up to the max. */
  replicationReconnectMinMs: 100,
  replicationReconnectMaxMs: 5000,
  /** Replication: offsets one divergence probe carries (the master answers how many match). */
  replicationProbeCandidates: 64,
  /** Replication: bytes of an auth token. */
  maxReplicationTokenBytes: 256,
  /**
   * Replication: master epochs kept in `replication/epochs.json` and sent in a HELLO (12 bytes
   * each); the oldest are dropped past it.
   */
  maxReplicationEpochs: 256,
  /**
   * A process that got further than the compile cache it found (imported, opened a store, sent)
   * writes one at exit, or this long after the import, the first open or the first send if it is
   * still running (lib/compile-cache.ts).
   */
  compileCacheWriteMs: 10_000,
});

// Relations the rest of the code relies on.
if (limits.maxBodyBytes + 64 * 1024 > limits.maxBatchBytes) {
  throw new Error('limits: a batch must hold at least one largest record');
}
// A DATA frame carries at least one whole record of the largest size (record-codec.ts: header,
// body, topic and properties, about 4.06 MiB), with its 28 bytes of header.
if (limits.maxReplicationFrameBytes < limits.maxBodyBytes + 64 + 128 + 0x10000 + 64) {
  throw new Error('limits: a replication frame must hold the largest record');
}
if (limits.replicationBatchBytes > limits.maxReplicationFrameBytes / 2) {
  throw new Error('limits: a replication batch must fit a frame');
}
// A HELLO (about 300 bytes and its token) carries every epoch of the follower.
if (limits.maxReplicationEpochs * 12 + 300 + limits.maxReplicationTokenBytes >
  limits.maxReplicationHelloBytes) {
  throw new Error('limits: a HELLO must hold every epoch');
}
if (limits.maxQueuesPerTopic > 0xffff) throw new Error('limits: queue ids are u16');
// A trace record's keys (24-hex-digit msgIds, space-separated) fit in its properties block.
if (limits.traceRecordEvents * 25 > limits.maxPropertiesBytes) {
  throw new Error('limits: the msgIds of one trace record must fit its properties');
}
