/**
 * Which queue a sharding key picks: |hashCode(key)| mod the queue count (RocketMQ's
 * SelectMessageQueueByHash), so one key's messages share a queue and stay in order.
 */
import { javaHashCode } from '../store/checksum.js';

export function queueOfShardingKey(key: string, queueCount: number): number {
  return Math.abs(javaHashCode(key)) % queueCount;
}
