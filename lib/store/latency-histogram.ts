/**
 * LatencyHistogram: a fixed-size, log-bucketed histogram of durations in microseconds, for
 * `stats()`. Four buckets per power of two (each at most 19 % wide) from 1 µs to about 18
 * minutes: 160 counters whatever the traffic, recording is an index computation and an
 * increment, and a percentile is one walk. Percentiles report the bucket's upper bound (never
 * better than measured).
 */

const SUB_BUCKETS = 4;
const BUCKETS = 40 * SUB_BUCKETS;

export interface LatencySummary {
  readonly count: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
}

function bucketOf(us: number): number {
  if (!(us > 1)) return 0;
  const b = Math.ceil(Math.log2(us) * SUB_BUCKETS);
  return b >= BUCKETS ? BUCKETS - 1 : b;
}

function upperBound(bucket: number): number {
  return Math.round(2 ** (bucket / SUB_BUCKETS));
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  private total = 0;
  private max = 0;

  /** Record one duration in microseconds. */
  record(us: number): void {
    this.counts[bucketOf(us)]! += 1;
    this.total += 1;
    if (us > this.max) this.max = us;
  }

  summary(): LatencySummary {
    return {
      count: this.total, p50Us: this.percentile(0.5), p99Us: this.percentile(0.99),
      p999Us: this.percentile(0.999), maxUs: Math.round(this.max),
    };
  }

  private percentile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(upperBound(b), Math.round(this.max));
    }
    return Math.round(this.max);
  }
}
