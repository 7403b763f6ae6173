/**
 * `topics`: every topic with its queue and message counts. `topic-status <topic>`: per queue its
 * min and max offset, message count and the store time of its last message.
 */
import type { Command } from 'commander';
import { checkTopicName } from '../broker/names.js';
import type { MessageStore } from '../message-store.js';
import {
  CliError, withCommonOptions, withReadOnlyStore, type CommonOptions,
} from './context.js';
import { formatTime, renderTable, writeJson, writeOut } from './output.js';

interface QueueStatus {
  readonly queueId: number;
  readonly minOffset: number;
  readonly maxOffset: number;
  readonly messages: number;
  /** Store time of the queue's last message, 0 when it has none. */
  readonly lastStoreTimestamp: number;
}

async function queueRange(store: MessageStore, topic: string, queueId: number):
  Promise<{ minOffset: number; maxOffset: number }> {
  const [minOffset, maxOffset] = await Promise.all([
    store.minOffset(topic, queueId), store.maxOffset(topic, queueId)]);
  return { minOffset, maxOffset };
}

async function queueStatus(store: MessageStore, topic: string, queueId: number):
  Promise<QueueStatus> {
  const { minOffset, maxOffset } = await queueRange(store, topic, queueId);
  let lastStoreTimestamp = 0;
  if (maxOffset > minOffset) {
    const last = await store.browse({ topic, queueId, offset: maxOffset - 1, maxNum: 1 });
    lastStoreTimestamp = last.messages[0]?.storeTimestamp ?? 0;
  }
  return { queueId, minOffset, maxOffset, messages: maxOffset - minOffset, lastStoreTimestamp };
}

async function listTopics(options: CommonOptions): Promise<void> {
  const rows = await withReadOnlyStore(options.dir, async (store) => {
    const out = [];
    for (const { topic, queueNums } of store.topics()) {
      let messages = 0;
      for (let q = 0; q < queueNums; q++) {
        const r = await queueRange(store, topic, q);
        messages += r.maxOffset - r.minOffset;
      }
      out.push({ topic, queueNums, messages });
    }
    return out;
  });
  if (options.json === true) {
    await writeJson({ topics: rows });
    return;
  }
  await writeOut(renderTable(
    [{ header: 'topic' }, { header: 'queues', align: 'right' },
      { header: 'messages', align: 'right' }],
    rows.map((t) => [t.topic, String(t.queueNums), String(t.messages)])));
}

async function topicStatus(topic: string, options: CommonOptions): Promise<void> {
  checkTopicName(topic);
  const queues = await withReadOnlyStore(options.dir, async (store) => {
    const config = store.topics().find((t) => t.topic === topic);
    if (config === undefined) throw new CliError(`no topic ${topic} in ${options.dir}`);
    const out: QueueStatus[] = [];
    for (let q = 0; q < config.queueNums; q++) out.push(await queueStatus(store, topic, q));
    return out;
  });
  const messages = queues.reduce((n, q) => n + q.messages, 0);
  const last = queues.reduce((t, q) => Math.max(t, q.lastStoreTimestamp), 0);
  if (options.json === true) {
    await writeJson({ topic, messages, lastStoreTimestamp: last, queues });
    return;
  }
  const rows = queues.map((q) => [String(q.queueId), String(q.minOffset), String(q.maxOffset),
    String(q.messages), formatTime(q.lastStoreTimestamp)]);
  rows.push(['total', '', '', String(messages), formatTime(last)]);
  await writeOut(renderTable([
    { header: 'queue', align: 'right' }, { header: 'min offset', align: 'right' },
    { header: 'max offset', align: 'right' }, { header: 'messages', align: 'right' },
    { header: 'last stored' },
  ], rows));
}

export function registerTopicCommands(program: Command): void {
  withCommonOptions(program.command('topics')
    .description('list every topic with its queue and message counts'))
    .action((options: CommonOptions) => listTopics(options));
  withCommonOptions(program.command('topic-status')
    .description('per queue of a topic: min and max offset, messages, last store time')
    .argument('<topic>', 'the topic'))
    .action((topic: string, options: CommonOptions) => topicStatus(topic, options));
}
