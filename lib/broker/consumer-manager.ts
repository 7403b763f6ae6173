/**
 * The live consumer instances of each group (RocketMQ's ConsumerManager) and the queue locks of
 * orderly consumption (its RebalanceLockManager), both inside one process.
 *
 * Membership: an instance registers when it starts and unregisters when it shuts down; every
 * member of the group is told at once, so rebalancing follows a start or stop immediately
 * instead of on RocketMQ's 20 s timer. A topic that gains queues tells its subscribers too.
 *
 * Locks: a CLUSTERING instance (orderly or not) consumes a queue only while it holds the queue's
 * lock. A queue
 * moving to another instance in a rebalance stays locked until the old owner's batch in flight
 * ends, so two instances never handle one queue at the same time.
 */
import { PocketMQError } from '../errors.js';
import type { GroupMember } from './port.js';

export type { MessageModel } from './port.js';

/** Consumer instances in one group. */
export const MAX_CONSUMERS_PER_GROUP = 1024;

interface QueueLock {
  owner: string;
  readonly waiters: { clientId: string; resolve: (locked: boolean) => void }[];
}

export class ConsumerManager {
  private readonly groups = new Map<string, Map<string, GroupMember>>();
  private readonly locks = new Map<string, QueueLock>();

  /** Add a member to its group under a client id unique in the group; returns the id. */
  join(member: GroupMember): string {
    const group = member.group;
    let members = this.groups.get(group);
    if (members === undefined) {
      members = new Map();
      this.groups.set(group, members);
    }
    let clientId = member.preferredClientId !== undefined &&
      !members.has(member.preferredClientId) ? member.preferredClientId : member.instanceName;
    for (let n = 2; members.has(clientId); n++) clientId = `${member.instanceName}#${n}`;
    for (const other of members.values()) {
      if (other.messageModel !== member.messageModel) {
        throw new PocketMQError('INVALID_OPTION', `group ${group} already consumes in ` +
          `${other.messageModel} mode; one group cannot mix message models`,
        { property: 'messageModel' });
      }
    }
    if (members.size >= MAX_CONSUMERS_PER_GROUP) {
      throw new PocketMQError('LIMIT_EXCEEDED', `group ${group} has ${members.size} consumers`,
        { limit: MAX_CONSUMERS_PER_GROUP });
    }
    members.set(clientId, member);
    this.notifyGroup(group);
    return clientId;
  }

  leave(group: string, clientId: string): void {
    const members = this.groups.get(group);
    if (members === undefined || !members.delete(clientId)) return;
    if (members.size === 0) this.groups.delete(group);
    this.notifyGroup(group);
  }

  /** Client ids of a group's live instances, sorted (every instance computes the same split). */
  clientIds(group: string): string[] {
    return [...(this.groups.get(group)?.keys() ?? [])].sort();
  }

  members(group: string): GroupMember[] {
    return [...(this.groups.get(group)?.values() ?? [])];
  }

  member(group: string, clientId: string): GroupMember | undefined {
    return this.groups.get(group)?.get(clientId);
  }

  groupNames(): string[] {
    return [...this.groups.keys()].sort();
  }

  /** Members write their pending offsets: before offsets are read or persisted. */
  flushOffsets(group?: string): void {
    const groups = group === undefined ? [...this.groups.values()]
      : [this.groups.get(group) ?? new Map<string, GroupMember>()];
    for (const members of groups) {
      for (const member of members.values()) member.flushOffsets();
    }
  }

  /** A topic gained queues: its subscribers rebalance. */
  topicChanged(topic: string): void {
    for (const members of this.groups.values()) {
      for (const member of members.values()) {
        if (member.topics().includes(topic)) member.onChange();
      }
    }
  }

  /** Resolves true once `clientId` holds the lock of the queue; false if `signal` aborts first. */
  lock(group: string, topic: string, queueId: number, clientId: string,
    signal?: AbortSignal): Promise<boolean> {
    const key = `${group}\u0000${topic}\u0000${queueId}`;
    const held = this.locks.get(key);
    if (held === undefined) {
      this.locks.set(key, { owner: clientId, waiters: [] });
      return Promise.resolve(true);
    }
    if (held.owner === clientId) return Promise.resolve(true);
    if (signal?.aborted === true) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => {
        const at = held.waiters.indexOf(waiter);
        if (at >= 0) held.waiters.splice(at, 1);
        resolve(false);
      };
      const waiter = {
        clientId,
        resolve: (locked: boolean): void => {
          // Granted: the signal no longer concerns this wait (and must not keep it alive).
          signal?.removeEventListener('abort', onAbort);
          resolve(locked);
        },
      };
      held.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Release a queue lock held by `clientId`; the next waiter gets it. */
  unlock(group: string, topic: string, queueId: number, clientId: string): void {
    const key = `${group}\u0000${topic}\u0000${queueId}`;
    const held = this.locks.get(key);
    if (held === undefined || held.owner !== clientId) return;
    const next = held.waiters.shift();
    if (next === undefined) {
      this.locks.delete(key);
      return;
    }
    held.owner = next.clientId;
    next.resolve(true);
  }

  /**
   * A member that went away without giving its queues up (its process died): release every
   * lock it holds or waits for, so the group's other members take its queues.
   */
  releaseLocks(group: string, clientId: string): void {
    const prefix = `${group}\u0000`;
    for (const [key, held] of [...this.locks]) {
      if (!key.startsWith(prefix)) continue;
      const waiting = held.waiters.findIndex((w) => w.clientId === clientId);
      if (waiting >= 0) held.waiters.splice(waiting, 1)[0]!.resolve(false);
      if (held.owner !== clientId) continue;
      const [, topic, queueId] = key.split('\u0000');
      this.unlock(group, topic!, Number(queueId), clientId);
    }
  }

  lockOwner(group: string, topic: string, queueId: number): string | undefined {
    return this.locks.get(`${group}\u0000${topic}\u0000${queueId}`)?.owner;
  }

  private notifyGroup(group: string): void {
    for (const member of this.groups.get(group)?.values() ?? []) member.onChange();
  }
}
