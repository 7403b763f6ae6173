/** Types of workload.mjs (plain JS so the child process can run it without a build). */
import type { Buffer } from 'node:buffer';

export declare const TOPICS: readonly string[];
export declare const QUEUES: number;
export declare const START_TIME_MS: number;

export interface WorkloadRecord {
  topic: string;
  queueId: number;
  body: Buffer;
  tags: string;
  keys?: string[];
  uniqKey?: string;
  properties?: Record<string, string>;
}

export interface Unit {
  readonly index: number;
  readonly firstSeq: number;
  readonly batch: boolean;
  readonly records: WorkloadRecord[];
}

export type PlanKind = 'single' | 'batch' | 'mixed';

export declare function mix(n: number): number;
export declare function bodyOf(seq: number): Buffer;
export declare function recordOf(seq: number, topic: string, queueId: number): WorkloadRecord;
export declare function seqOfBody(body: Buffer): number;

export declare class Plan {
  constructor(kind: PlanKind);
  readonly kind: PlanKind;
  /** Units handed out so far. */
  index: number;
  /** Records handed out so far (the next record's seq). */
  seq: number;
  next(): Unit;
}

export declare class SteppedClock {
  constructor(startMs?: number);
  timeMs: number;
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface StatusResult {
  readonly status: string;
}

export interface DrivenStore {
  putMessage(record: WorkloadRecord): Promise<StatusResult>;
  putMessages(records: WorkloadRecord[]): Promise<StatusResult[]>;
}

export interface DriveOptions {
  readonly units: number;
  readonly groupUnits: number;
  readonly depth?: number;
  readonly clock?: SteppedClock | null;
  readonly stepMs?: number;
  readonly onAck: (units: number, seqs: number) => void;
}

export declare function drive(store: DrivenStore, plan: Plan, options: DriveOptions):
Promise<void>;
