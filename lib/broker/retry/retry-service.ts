/**
 * Redelivery and dead letters for concurrent consumers (RocketMQ's consumer send-back): a
 * message its listener failed is stored again, through the delay of level 3 + reconsumeTimes
 * of `messageDelayLevel`, in the group's retry topic `%RETRY%<group>`, which the group's
 * consumers read besides their topics; it comes back with the same id, topic, tags, keys and
 * properties and reconsumeTimes counted up, across restarts. The consumer acknowledges the
 * failed message at once, so its queue moves on. One that failed `1 + maxReconsumeTimes` times
 * goes to `%DLQ%<group>` instead.
 *
 * When that write fails (a full disk), the message is held here, in memory: it comes back to
 * the same consumer after the backoff (or, once a move to the DLQ succeeds, is acknowledged),
 * and its queue's offset waits before it meanwhile. A move to the DLQ is tried again every
 * `limits.deadLetterRetryMs`, without calling the listener again.
 *
 * Each retry publishes on `pocketmq:retry`.
 */
import { channel } from 'node:diagnostics_channel';
import { channels, type RetryMessage } from '../../channels.js';
import { limits } from '../../limits.js';
import type { Clock, TimerHandle } from '../../store/clock.js';
import type { MessageExt } from '../message.js';
import type {
  GroupMember, MessageQueue, SendBackRequest, SendBackResult,
} from '../port.js';

const retryChannel = channel(channels.retry);

export interface RetryServiceHost {
  readonly clock: Clock;
  /** How long redelivery number `reconsumeTimes + 1` waits. */
  retryDelayMs(reconsumeTimes: number): number;
  /** The live member `clientId` of `group`, if it is still there. */
  member(group: string, clientId: string): GroupMember | undefined;
  /** Move messages to the DLQ; resolves those whose move failed. */
  deadLetter(group: string, clientId: string, messages: readonly MessageExt[]):
    Promise<MessageExt[]>;
  /** Store a failed message for its next delivery from the group's retry topic. */
  storeRetry(group: string, message: MessageExt): Promise<void>;
  onError(what: string, err: unknown): void;
}

export class RetryService {
  /** Pending timers per member and queue, so a queue given up cancels its own. */
  private readonly timers = new Map<string, Set<TimerHandle>>();

  constructor(private readonly host: RetryServiceHost) {}

  async sendBack(request: SendBackRequest): Promise<SendBackResult> {
    const { group, clientId, mq, maxReconsumeTimes } = request;
    const dead: MessageExt[] = [];
    const acknowledged: MessageExt[] = [];
    const held: MessageExt[] = [];
    for (const m of request.messages) {
      if (m.reconsumeTimes >= maxReconsumeTimes) {
        dead.push(m);
        continue;
      }
      const delayMs = this.host.retryDelayMs(m.reconsumeTimes);
      if (retryChannel.hasSubscribers) {
        publishRetry(group, clientId, { ...m, reconsumeTimes: m.reconsumeTimes + 1 }, delayMs);
      }
      try {
        await this.host.storeRetry(group, m);
        acknowledged.push(m);
      } catch (err) {
        this.host.onError('the retry could not be stored; held in memory', err);
        const again = { ...m, reconsumeTimes: m.reconsumeTimes + 1 };
        this.schedule(group, clientId, mq, delayMs, (member) => member.redeliver(mq, [again]));
        held.push(m);
      }
    }
    if (dead.length > 0) {
      const failed = await this.host.deadLetter(group, clientId, dead);
      this.deadLetterLater(group, clientId, mq, failed);
      const failedSet = new Set(failed);
      for (const m of dead) (failedSet.has(m) ? held : acknowledged).push(m);
    }
    return { acknowledged, held };
  }

  /** Forget the pending redeliveries of a queue the member gave up. */
  cancel(group: string, clientId: string, mq: MessageQueue): void {
    const key = timerKey(group, clientId, mq);
    for (const timer of this.timers.get(key) ?? []) this.host.clock.clearTimeout(timer);
    this.timers.delete(key);
  }

  /** Forget every pending redelivery of a member that went away. */
  cancelMember(group: string, clientId: string): void {
    const prefix = `${group}\u0000${clientId}\u0000`;
    for (const [key, timers] of [...this.timers]) {
      if (!key.startsWith(prefix)) continue;
      for (const timer of timers) this.host.clock.clearTimeout(timer);
      this.timers.delete(key);
    }
  }

  /** Stop every pending redelivery (the broker closes). */
  cancelAll(): void {
    for (const set of this.timers.values()) {
      for (const timer of set) this.host.clock.clearTimeout(timer);
    }
    this.timers.clear();
  }

  private deadLetterLater(group: string, clientId: string, mq: MessageQueue,
    failed: readonly MessageExt[]): void {
    if (failed.length === 0) return;
    this.schedule(group, clientId, mq, limits.deadLetterRetryMs, () => {
      this.host.deadLetter(group, clientId, failed).then((again) => {
        const againSet = new Set(again);
        const moved = failed.filter((m) => !againSet.has(m));
        if (moved.length > 0) this.host.member(group, clientId)?.deadLettered(mq, moved);
        this.deadLetterLater(group, clientId, mq, again);
      }, (err: unknown) => this.host.onError('dead letter', err));
    });
  }

  /** Run `fn` after `delayMs` with the member, unless the queue is cancelled first. */
  private schedule(group: string, clientId: string, mq: MessageQueue, delayMs: number,
    fn: (member: GroupMember) => void): void {
    const key = timerKey(group, clientId, mq);
    let set = this.timers.get(key);
    if (set === undefined) {
      set = new Set();
      this.timers.set(key, set);
    }
    const timers = set;
    const timer = this.host.clock.setTimeout(() => {
      timers.delete(timer);
      if (timers.size === 0 && this.timers.get(key) === timers) this.timers.delete(key);
      const member = this.host.member(group, clientId);
      if (member !== undefined) fn(member);
    }, delayMs);
    timers.add(timer);
  }
}

function timerKey(group: string, clientId: string, mq: MessageQueue): string {
  return `${group}\u0000${clientId}\u0000${mq.topic}\u0000${mq.queueId}`;
}

function publishRetry(group: string, clientId: string, m: MessageExt, delayMs: number): void {
  const message: RetryMessage = { group, clientId, topic: m.topic, msgId: m.msgId,
    queueId: m.queueId, queueOffset: m.queueOffset, reconsumeTimes: m.reconsumeTimes, delayMs,
    orderly: false };
  retryChannel.publish(message);
}
