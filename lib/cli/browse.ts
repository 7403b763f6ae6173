/**
 * `browse <topic>`: read a topic's messages without consuming them (no group, no offsets), queue
 * after queue from `--from` (default each queue's min offset), at most `--count` in all. The
 * reading is paged, and both outputs stream (a table with widths fixed by the first page; JSON
 * written element by element), so a browse of millions runs in bounded memory. `dlq list`
 * browses a group's dead-letter topic the same way.
 */
import type { Command } from 'commander';
import type { MessageExt } from '../broker/message.js';
import { checkTopicName } from '../broker/names.js';
import type { MessageStore } from '../message-store.js';
import {
  CliError, intOption, withCommonOptions, withReadOnlyStore, type CommonOptions,
} from './context.js';
import { MESSAGE_COLUMNS, messageJson, messageRow } from './message-view.js';
import { StreamingTable, writeOut } from './output.js';
import { ProgressBar } from './progress.js';

export interface BrowseOptions extends CommonOptions {
  readonly queue?: number | undefined;
  readonly from?: number | undefined;
  readonly count: number;
}

/** Where a browse of one queue started, ended, and would go on. */
export interface QueueCursor {
  readonly queueId: number;
  readonly minOffset: number;
  readonly maxOffset: number;
  nextOffset: number;
}

/** Messages read per call: bounds memory whatever `--count` is. */
const PAGE_MESSAGES = 256;
/** The largest `--count`. */
export const MAX_BROWSE_COUNT = 1e12;

/** The per-queue start and end of a browse of `topic`. */
async function cursors(store: MessageStore, topic: string, options: BrowseOptions):
  Promise<QueueCursor[]> {
  const config = store.topics().find((t) => t.topic === topic);
  const queueIds = options.queue !== undefined ? [options.queue]
    : Array.from({ length: config?.queueNums ?? 0 }, (_, q) => q);
  const out: QueueCursor[] = [];
  for (const queueId of queueIds) {
    const [minOffset, maxOffset] = await Promise.all([
      store.minOffset(topic, queueId), store.maxOffset(topic, queueId)]);
    out.push({ queueId, minOffset, maxOffset,
      nextOffset: Math.min(maxOffset, Math.max(minOffset, options.from ?? minOffset)) });
  }
  return out;
}

/** Read up to `count` messages queue after queue, handing each page to `onPage`. */
export async function browseTopic(store: MessageStore, topic: string, options: BrowseOptions,
  onPage: (messages: MessageExt[], originTopics: (string | null)[]) => Promise<void>):
  Promise<QueueCursor[]> {
  const queues = await cursors(store, topic, options);
  const available = queues.reduce((n, q) => n + q.maxOffset - q.nextOffset, 0);
  const total = Math.min(options.count, available);
  const bar = new ProgressBar(`browse ${topic}`, { total });
  let read = 0;
  try {
    for (const q of queues) {
      while (read < total && q.nextOffset < q.maxOffset) {
        const maxNum = Math.min(PAGE_MESSAGES, total - read, q.maxOffset - q.nextOffset);
        const page = await store.browse({ topic, queueId: q.queueId, offset: q.nextOffset,
          maxNum });
        if (page.nextOffset <= q.nextOffset) break;
        q.nextOffset = page.nextOffset;
        read += page.messages.length;
        if (page.messages.length > 0) await onPage(page.messages, page.originTopics);
        bar.update(read);
      }
    }
  } finally {
    bar.finish();
  }
  return queues;
}

/** Where a later browse would go on, as options (`--queue 1 --from 32`), or null at the end. */
function more(queues: readonly QueueCursor[]): string | null {
  const q = queues.find((c) => c.nextOffset < c.maxOffset);
  return q === undefined ? null : `--queue ${q.queueId} --from ${q.nextOffset}`;
}

/**
 * Print a browse as a streamed table or a streamed JSON document; the extra JSON fields first.
 * With `origins` (dead letters) each message also shows the topic it was first sent to.
 */
export async function printBrowse(store: MessageStore, topic: string, options: BrowseOptions,
  head: Record<string, unknown>, origins = false): Promise<void> {
  if (options.json === true) {
    let first = true;
    const fields = Object.entries({ ...head, topic })
      .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},\n`).join('');
    await writeOut(`{\n${fields}  "messages": [`);
    const queues = await browseTopic(store, topic, options, async (messages, originTopics) => {
      const text = messages.map((m, i) => `    ${JSON.stringify(origins
        ? { originTopic: originTopics[i], ...messageJson(m) } : messageJson(m))}`).join(',\n');
      await writeOut(`${first ? '\n' : ',\n'}${text}`);
      first = false;
    });
    await writeOut(`${first ? '' : '\n  '}],\n  "queues": ${JSON.stringify(queues)}\n}\n`);
    return;
  }
  const table = new StreamingTable(origins
    ? [{ header: 'original topic' }, ...MESSAGE_COLUMNS] : MESSAGE_COLUMNS);
  let shown = 0;
  const queues = await browseTopic(store, topic, options, async (messages, originTopics) => {
    shown += messages.length;
    await writeOut(table.render(messages.map((m, i) => (origins
      ? [originTopics[i] ?? '-', ...messageRow(m)] : messageRow(m)))));
  });
  const next = more(queues);
  await writeOut(`${shown} message${shown === 1 ? '' : 's'}` +
    `${next === null ? '' : `; more with ${next}`}\n`);
}

/** `--queue`, `--from` and `--count`, for browse and dlq list. */
export function withBrowseOptions(command: Command): Command {
  return command
    .option('--queue <queueId>', 'only this queue (default: every queue, one after another)',
      intOption(0, 65_535))
    .option('--from <offset>', 'start at this queue offset (default: each queue\'s min offset)',
      intOption(0))
    .option('--count <n>', 'at most this many messages in all', intOption(1, MAX_BROWSE_COUNT),
      32);
}

export function registerBrowseCommand(program: Command): void {
  withBrowseOptions(withCommonOptions(program.command('browse')
    .description('read messages of a topic without consuming them')
    .argument('<topic>', 'the topic')))
    .action((topic: string, options: BrowseOptions) => {
      checkTopicName(topic);
      return withReadOnlyStore(options.dir, (store) => {
        if (!store.topics().some((t) => t.topic === topic)) {
          throw new CliError(`no topic ${topic} in ${options.dir}`);
        }
        return printBrowse(store, topic, options, {});
      });
    });
}
