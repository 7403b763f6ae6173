/**
 * Consumer groups, read-only: `consumer-progress [<group>]` (per queue the broker's max offset,
 * the group's committed offset and the lag; every group with offsets when none is named) and
 * `dlq list <group>` (browse the group's dead letters in `%DLQ%<group>`).
 */
import type { Command } from 'commander';
import type { QueueProgress } from '../broker/port.js';
import { checkGroupName, dlqTopic } from '../broker/names.js';
import type { MessageStore } from '../message-store.js';
import { printBrowse, withBrowseOptions, type BrowseOptions } from './browse.js';
import {
  CliError, withCommonOptions, withReadOnlyStore, type CommonOptions,
} from './context.js';
import { formatTime, renderTable, writeJson, writeOut } from './output.js';

interface GroupProgress {
  readonly group: string;
  readonly lag: number;
  readonly queues: readonly QueueProgress[];
}

/** Every group the store keeps offsets for (the stats' per-group rows). */
async function groupNames(store: MessageStore): Promise<string[]> {
  const stats = await store.stats();
  return stats.groups.map((g) => g.group).sort();
}

async function progressOf(store: MessageStore, group: string): Promise<GroupProgress> {
  const queues = await store.consumerProgress(group);
  return { group, lag: queues.reduce((n, q) => n + q.lag, 0), queues };
}

async function consumerProgress(group: string | undefined, options: CommonOptions):
  Promise<void> {
  if (group !== undefined) checkGroupName(group);
  const groups = await withReadOnlyStore(options.dir, async (store) => {
    const known = await groupNames(store);
    if (group !== undefined && !known.includes(group)) {
      throw new CliError(`no consumer group ${group} in ${options.dir}: it has no stored ` +
        'offsets (a group has some once it has consumed)');
    }
    const names = group === undefined ? known : [group];
    const out: GroupProgress[] = [];
    for (const name of names) out.push(await progressOf(store, name));
    return out;
  });
  if (options.json === true) {
    await writeJson({ groups });
    return;
  }
  const rows = groups.flatMap((g) => g.queues.map((q) => [g.group, q.topic, String(q.queueId),
    String(q.brokerOffset), String(q.consumerOffset), String(q.lag),
    formatTime(q.lastTimestamp)]));
  await writeOut(renderTable([
    { header: 'group' }, { header: 'topic' }, { header: 'queue', align: 'right' },
    { header: 'broker offset', align: 'right' }, { header: 'consumer offset', align: 'right' },
    { header: 'lag', align: 'right' }, { header: 'last commit' },
  ], rows) + groups.map((g) => `${g.group}: lag ${g.lag}\n`).join(''));
}

async function dlqList(group: string, options: BrowseOptions): Promise<void> {
  const topic = dlqTopic(group);
  await withReadOnlyStore(options.dir,
    (store) => printBrowse(store, topic, options, { group }, true));
}

export function registerProgressCommand(program: Command): void {
  withCommonOptions(program.command('consumer-progress')
    .description('per queue: the max offset, the group\'s offset and its lag')
    .argument('[group]', 'the consumer group (default: every group with offsets)'))
    .action((group: string | undefined, options: CommonOptions) =>
      consumerProgress(group, options));
}

export function registerDlqListCommand(dlq: Command): void {
  withBrowseOptions(withCommonOptions(dlq.command('list')
    .description('browse a group\'s dead letters')
    .argument('<group>', 'the consumer group')))
    .action((group: string, options: BrowseOptions) => dlqList(group, options));
}
