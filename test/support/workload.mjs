/**
 * The deterministic workload of the crash and recovery tests, shared by the child process
 * (test/fixtures/crash-writer.mjs, plain JS on dist/) and the tests (TypeScript on lib/), so both
 * sides derive the same records from the same sequence numbers. Types: workload.d.mts.
 *
 * A plan is a list of units appended in order: a unit is one `putMessage` or one `putMessages`
 * batch (one topic and queue). Record `seq` (0, 1, 2, ... across units) carries `seq=<n>;` at
 * the start of its body, so a record found on disk says which one it is.
 */
import { Buffer } from 'node:buffer';
import { setImmediate } from 'node:timers';

export const TOPICS = ['Orders', 'Payments', 'Audit_log'];
export const QUEUES = 4;
export const START_TIME_MS = 1_700_000_000_000;

/** A 32-bit integer hash (lowbias32): spreads consecutive numbers. */
export function mix(n) {
  let x = (n + 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** The body of record `seq`: `seq=<n>;` then printable bytes derived from n, 24..723 bytes. */
export function bodyOf(seq) {
  const h = mix(seq);
  const length = 24 + (h % 700);
  const body = Buffer.allocUnsafe(length);
  const head = body.write(`seq=${seq};`, 0, 'latin1');
  let x = (h | 1) >>> 0;
  for (let i = head; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    body[i] = 0x20 + ((x >>> 0) % 95);
  }
  return body;
}

/** Record `seq`, sent alone or in a batch to (topic, queueId). */
export function recordOf(seq, topic, queueId) {
  const record = { topic, queueId, body: bodyOf(seq), tags: seq % 2 === 0 ? 'TagA' : 'TagB' };
  if (seq % 3 === 0) record.keys = [`k${seq}`, `g${seq % 97}`];
  if (seq % 5 === 0) record.uniqKey = `u${seq}`;
  if (seq % 7 === 0) record.properties = { seq: String(seq), region: seq % 2 ? 'eu' : 'us' };
  return record;
}

/** The sequence number a record's body starts with, or -1. */
export function seqOfBody(body) {
  const m = /^seq=(\d+);/.exec(body.toString('latin1', 0, 16));
  return m === null ? -1 : Number(m[1]);
}

function unitSize(kind, index) {
  const h = mix(index ^ 0x5bd1e995);
  if (kind === 'single') return 0;
  if (kind === 'mixed' && h % 5 !== 0) return 0;
  return 1 + ((h >>> 8) % 24);
}

/**
 * Units in order. `kind`: 'single' (every unit one putMessage), 'batch' (every unit a batch of
 * 1..24) or 'mixed' (one unit in five a batch). A batch unit has `batch: true`.
 */
export class Plan {
  constructor(kind) {
    this.kind = kind;
    this.index = 0;
    this.seq = 0;
  }

  /** The next unit: { index, firstSeq, batch, records }. */
  next() {
    const index = this.index++;
    const size = unitSize(this.kind, index);
    const h = mix(index);
    const topic = TOPICS[h % TOPICS.length];
    const queueId = (h >>> 4) % QUEUES;
    const firstSeq = this.seq;
    const count = size === 0 ? 1 : size;
    const records = [];
    for (let i = 0; i < count; i++) records.push(recordOf(firstSeq + i, topic, queueId));
    this.seq += count;
    return { index, firstSeq, batch: size !== 0, records };
  }
}

/**
 * A clock whose time the workload sets and whose timers never fire: flush services, retention
 * and flush deadlines stay idle, so two runs of the same plan store the same timestamps and the
 * checkpoint stays where the store's open left it.
 */
export class SteppedClock {
  constructor(startMs = START_TIME_MS) {
    this.timeMs = startMs;
  }
  now() {
    return this.timeMs;
  }
  setTimeout() {
    return 0;
  }
  clearTimeout() {}
}

function append(store, unit) {
  return unit.batch ? store.putMessages(unit.records)
    : store.putMessage(unit.records[0]).then((r) => [r]);
}

function checkStatuses(results, unit) {
  for (const r of results) {
    if (r.status !== 'PUT_OK') throw new Error(`unit ${unit.index}: status ${r.status}`);
  }
}

/**
 * Append `units` units of `plan` in groups of `groupUnits`, at most `depth` groups in flight.
 * `onAck(units, seqs)` is told, in order, each time a whole group resolved PUT_OK. With a
 * SteppedClock the next group starts only when the previous one resolved (depth 1), after the
 * clock moves on `stepMs`, so store timestamps depend on the plan alone.
 */
export async function drive(store, plan, options) {
  const { units, groupUnits, onAck } = options;
  const clock = options.clock ?? null;
  const depth = clock === null ? options.depth ?? 4 : 1;
  const inFlight = [];
  let chain = Promise.resolve();
  let sent = 0;
  let group = 0;
  while (sent < units) {
    if (clock !== null) clock.timeMs = START_TIME_MS + group * (options.stepMs ?? 137);
    const parts = [];
    for (let i = 0; i < groupUnits && sent < units; i++, sent++) {
      const unit = plan.next();
      parts.push(append(store, unit).then((results) => checkStatuses(results, unit)));
    }
    const ackUnits = sent;
    const ackSeqs = plan.seq;
    const all = Promise.all(parts);
    chain = chain.then(() => all).then(() => onAck(ackUnits, ackSeqs));
    inFlight.push(chain);
    group++;
    if (inFlight.length >= depth) await inFlight.shift();
    // Let the turn end: the commit, the flush and stdout get their turn.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await chain;
}
