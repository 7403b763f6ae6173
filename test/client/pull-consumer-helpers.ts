/**
 * Shared by the pull-consumer tests: a small store, sends pinned to one queue, draining a
 * consumer without waiting, and waiting on a condition without a fixed sleep.
 */
import { expect } from 'vitest';
import {
  MessageStore, type Message, type MessageExt, type MessageStoreOptions, type Producer,
  type PullConsumer, type SendResult,
} from '../../lib/index.js';
import { backendOptions } from '../support/test-backend.js';

export const SMALL: MessageStoreOptions = { commitLogSegmentSize: 4 * 2 ** 20 };

export function openStore(dir: string, options: MessageStoreOptions = {}): Promise<MessageStore> {
  return MessageStore.open(dir, { ...SMALL, ...backendOptions(dir), ...options });
}

/** Send `bodies` to one queue of `topic`, in order. */
export async function sendTo(producer: Producer, topic: string, queueId: number,
  bodies: readonly string[], extra: Partial<Message> = {}): Promise<SendResult[]> {
  const out: SendResult[] = [];
  for (const body of bodies) {
    out.push(await producer.send({ topic, body, ...extra }, { selector: () => queueId }));
  }
  return out;
}

/** `count` bodies named `<prefix>-<i>`. */
export function names(prefix: string, count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${from + i}`);
}

export function texts(messages: readonly MessageExt[]): string[] {
  return messages.map((m) => m.body.toString('utf8'));
}

/** Poll without waiting until a poll comes back empty; every message, in poll order. */
export async function drain(consumer: PullConsumer, maxPolls = 1000): Promise<MessageExt[]> {
  const out: MessageExt[] = [];
  for (let i = 0; i < maxPolls; i++) {
    const batch = await consumer.poll(0);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
  throw new Error(`drain: still getting messages after ${maxPolls} polls`);
}

/** Messages of each queue in queue-offset order, consecutive from their first. */
export function expectQueueOrder(messages: readonly MessageExt[]): void {
  const last = new Map<number, number>();
  for (const m of messages) {
    const before = last.get(m.queueId);
    if (before !== undefined) {
      expect(m.queueOffset, `queue ${m.queueId} after offset ${before}`).toBe(before + 1);
    }
    last.set(m.queueId, m.queueOffset);
  }
}

/** Resolves once `test` holds; fails naming `what` after `timeoutMs` of real time. */
export async function until(what: string, test: () => boolean, timeoutMs = 10_000):
Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The `code` of what `fn` throws (undefined when it does not throw). */
export function thrownCode(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { code?: unknown }).code;
  }
  return undefined;
}

/** Whether a promise has settled, after letting pending callbacks run. */
export function tracked<T>(promise: Promise<T>):
{ readonly settled: boolean; promise: Promise<T> } {
  const state = { settled: false, promise };
  promise.then(() => { state.settled = true; }, () => { state.settled = true; });
  return state;
}

/** One turn of the event loop. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
