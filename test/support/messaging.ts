/**
 * Helpers for producer and consumer tests: a small store, waiting on a condition without a fixed
 * sleep, a gate a listener can block on, and a recorder that remembers what a push consumer's
 * listener was handed and how many calls ran at once (in total and per queue).
 */
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { MessageStore, type MessageStoreOptions } from '../../lib/message-store.js';
import type { Producer } from '../../lib/client/producer.js';
import type { PushConsumer } from '../../lib/client/push-consumer.js';
import type { PushConsumerOptions } from '../../lib/client/consumer-options.js';
import type {
  ConsumeContext, ConsumeListener, ConsumeResult,
} from '../../lib/client/consume-service.js';
import type { MessageExt } from '../../lib/broker/message.js';
import { backendOptions } from './test-backend.js';

/** Small segments, so tests stay light. */
export function openStore(dir: string, options: MessageStoreOptions = {}): Promise<MessageStore> {
  return MessageStore.open(dir, { commitLogSegmentSize: 4 * 2 ** 20, ...backendOptions(dir),
    ...options });
}

/**
 * Resolves once `predicate` holds; polls on the event loop (first with setImmediate, then every
 * few ms) and fails naming `what` after `timeoutMs`. The timeout only catches a hang: no
 * assertion depends on how long the wait took.
 */
export async function until(predicate: () => boolean | Promise<boolean>, what: string,
  timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let spins = 0; !(await predicate()); spins++) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    if (spins < 50) await yieldToLoop();
    else await sleep(2);
  }
}

/** Let queued callbacks and I/O run for a few turns (used to show that nothing more happens). */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) {
    await yieldToLoop();
    await sleep(1);
  }
}

/** A promise to block on, opened from outside. */
export class Gate {
  readonly promise: Promise<void>;
  private release!: () => void;
  opened = false;

  constructor() {
    this.promise = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  open(): void {
    this.opened = true;
    this.release();
  }
}

/** Send `n` messages to `topic`; `make(i)` adds fields (tags, keys, properties, body). */
export async function sendMany(producer: Producer, topic: string, n: number,
  make: (i: number) => Record<string, unknown> = () => ({})): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await producer.send({ topic, body: `m${i}`, ...make(i) });
    ids.push(r.msgId);
  }
  return ids;
}

export interface Call {
  readonly messages: MessageExt[];
  readonly context: ConsumeContext;
}

/** What a test's handler returns: a ConsumeResult (a plain string, so async arrows type-check). */
type Handler = (messages: MessageExt[], context: ConsumeContext, call: number) =>
  string | Promise<string>;

/**
 * A listener that records every call, the most calls in flight at once, and whether two calls
 * of one queue ever overlapped. `handle` decides the result (default: success at once).
 */
export class Recorder {
  readonly calls: Call[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** In-flight calls per queue key, across every consumer sharing this recorder. */
  readonly perQueue = new Map<string, number>();
  maxPerQueue = 0;

  constructor(public handle: Handler = () => 'CONSUME_SUCCESS') {}

  /** Every message handed out, in call order. */
  get messages(): MessageExt[] {
    return this.calls.flatMap((c) => c.messages);
  }

  /** Bodies as strings, in call order. */
  get bodies(): string[] {
    return this.messages.map((m) => m.body.toString());
  }

  readonly listener: ConsumeListener = async (messages, context) => {
    const key = `${context.messageQueue.topic}/${context.messageQueue.queueId}`;
    const call = this.calls.length;
    this.calls.push({ messages, context });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const q = (this.perQueue.get(key) ?? 0) + 1;
    this.perQueue.set(key, q);
    this.maxPerQueue = Math.max(this.maxPerQueue, q);
    try {
      return await this.handle(messages, context, call) as ConsumeResult;
    } finally {
      this.inFlight--;
      this.perQueue.set(key, (this.perQueue.get(key) ?? 1) - 1);
    }
  };
}

/** How often each value occurs. */
export function counts(values: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of values) out.set(v, (out.get(v) ?? 0) + 1);
  return out;
}

/** The group's total lag over the queues of `topic`. */
export async function lagOf(store: MessageStore, group: string, topic: string): Promise<number> {
  const progress = await store.consumerProgress(group);
  return progress.filter((p) => p.topic === topic).reduce((n, p) => n + p.lag, 0);
}

/** Key of a MessageQueue, for sets and maps. */
export function mqKey(mq: { topic: string; queueId: number }): string {
  return `${mq.topic}/${mq.queueId}`;
}

/** Create, subscribe (`*`), register and start a push consumer. */
export async function startPush(store: MessageStore, options: PushConsumerOptions, topic: string,
  listener: ConsumeListener): Promise<PushConsumer> {
  const consumer = store.createPushConsumer(options);
  consumer.subscribe(topic, '*');
  consumer.registerMessageListener(listener);
  await consumer.start();
  return consumer;
}
