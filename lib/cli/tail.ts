/**
 * `tail <topic>`: print the messages appended after it started (or all, `--from-beginning`) and
 * follow new ones until SIGINT/SIGTERM or `--count`. A read-only store is a snapshot as of its
 * open, so each round opens one, reads every queue from where the last round stopped, prints the
 * new messages in append (commit-log) order and closes it; then it waits `--interval` ms.
 * `--json` prints one JSON object per line (NDJSON): the one command whose stdout is not a
 * single JSON document, since it has no end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { MessageExt } from '../broker/message.js';
import { checkTopicName } from '../broker/names.js';
import type { MessageStore } from '../message-store.js';
import {
  intOption, withCommonOptions, withReadOnlyStore, type CommonOptions,
} from './context.js';
import { MESSAGE_COLUMNS, messageJson, messageRow } from './message-view.js';
import { StreamingTable, writeErr, writeJsonLine, writeOut } from './output.js';

interface TailOptions extends CommonOptions {
  readonly fromBeginning?: boolean | undefined;
  readonly interval: number;
  readonly count?: number | undefined;
}

/** Messages read per queue per call. */
const PAGE_MESSAGES = 256;

/** Per queue, the next offset to print. Queues that appear later start at their min offset. */
type Positions = Map<number, number>;

/** The messages of `topic` past `positions` in this snapshot; moves `positions` on. */
async function readNew(store: MessageStore, topic: string, positions: Positions,
  limit: number): Promise<MessageExt[]> {
  const queueNums = store.topics().find((t) => t.topic === topic)?.queueNums ?? 0;
  const out: MessageExt[] = [];
  for (let queueId = 0; queueId < queueNums && out.length < limit; queueId++) {
    let offset = positions.get(queueId) ?? await store.minOffset(topic, queueId);
    const max = await store.maxOffset(topic, queueId);
    while (offset < max && out.length < limit) {
      const page = await store.browse({ topic, queueId, offset,
        maxNum: Math.min(PAGE_MESSAGES, limit - out.length) });
      if (page.nextOffset <= offset) break;
      out.push(...page.messages);
      offset = page.nextOffset;
    }
    positions.set(queueId, offset);
  }
  return out.sort((a, b) => a.commitLogOffset - b.commitLogOffset);
}

/** Each queue's max offset now: where `tail` without `--from-beginning` starts. */
async function ends(store: MessageStore, topic: string): Promise<Positions> {
  const positions: Positions = new Map();
  const queueNums = store.topics().find((t) => t.topic === topic)?.queueNums ?? 0;
  for (let queueId = 0; queueId < queueNums; queueId++) {
    positions.set(queueId, await store.maxOffset(topic, queueId));
  }
  return positions;
}

async function tail(topic: string, options: TailOptions): Promise<void> {
  checkTopicName(topic);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const positions = options.fromBeginning === true ? new Map<number, number>()
      : await withReadOnlyStore(options.dir, (store) => ends(store, topic));
    writeErr(`pocketmq: following ${topic} in ${options.dir}` +
      `${options.fromBeginning === true ? ' from the beginning' : ''} (Ctrl-C stops)\n`);
    const table = new StreamingTable(MESSAGE_COLUMNS);
    let left = options.count ?? Infinity;
    while (!stop.signal.aborted && left > 0) {
      const messages = await withReadOnlyStore(options.dir,
        (store) => readNew(store, topic, positions, Math.min(left, 16 * PAGE_MESSAGES)));
      left -= messages.length;
      if (options.json === true) {
        for (const m of messages) await writeJsonLine(messageJson(m));
      } else {
        await writeOut(table.render(messages.map(messageRow)));
      }
      if (left > 0 && messages.length === 0) {
        await sleep(options.interval, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function registerTailCommand(program: Command): void {
  withCommonOptions(program.command('tail')
    .description('print new messages of a topic as they are appended (Ctrl-C stops)')
    .argument('<topic>', 'the topic'))
    .option('--from-beginning', 'print the stored messages first')
    .option('--interval <ms>', 'look for new messages this often', intOption(10, 3_600_000), 500)
    .option('--count <n>', 'stop after this many messages', intOption(1))
    .action((topic: string, options: TailOptions) => tail(topic, options));
}
