/**
 * `query-by-key <topic> <key>`: the messages a key finds through the index, newest first.
 * `query-by-id <msgId>`: one message, every field and its body.
 */
import type { Command } from 'commander';
import { checkTopicName } from '../broker/names.js';
import { MAX_QUERY_RESULTS } from '../message-store.js';
import {
  CliError, intOption, timeOption, withCommonOptions, withReadOnlyStore, type CommonOptions,
} from './context.js';
import {
  MESSAGE_COLUMNS, messageJson, messageRow, renderMessage,
} from './message-view.js';
import { renderTable, writeJson, writeOut } from './output.js';

interface QueryByKeyOptions extends CommonOptions {
  readonly max: number;
  readonly begin?: number | undefined;
  readonly end?: number | undefined;
}

async function queryByKey(topic: string, key: string, options: QueryByKeyOptions):
  Promise<void> {
  checkTopicName(topic);
  const messages = await withReadOnlyStore(options.dir, (store) => store.queryMessage({
    topic, key, maxNum: options.max, begin: options.begin, end: options.end }));
  if (options.json === true) {
    await writeJson({ topic, key, messages: messages.map(messageJson) });
    return;
  }
  await writeOut(renderTable(MESSAGE_COLUMNS, messages.map(messageRow)));
}

async function queryById(msgId: string, options: CommonOptions): Promise<void> {
  const message = await withReadOnlyStore(options.dir, (store) => store.viewMessage(msgId));
  if (message === null) throw new CliError(`no message with id ${msgId} in ${options.dir}`);
  if (options.json === true) {
    await writeJson({ message: messageJson(message) });
    return;
  }
  await writeOut(renderMessage(message));
}

export function registerQueryCommands(program: Command): void {
  withCommonOptions(program.command('query-by-key')
    .description('find messages of a topic by key (newest first)')
    .argument('<topic>', 'the topic')
    .argument('<key>', 'a key the producer gave the message'))
    .option('--max <n>', `at most this many messages (1 to ${MAX_QUERY_RESULTS})`,
      intOption(1, MAX_QUERY_RESULTS), 32)
    .option('--begin <time>', 'stored at or after this time (ms or ISO 8601)', timeOption)
    .option('--end <time>', 'stored at or before this time (ms or ISO 8601)', timeOption)
    .action((topic: string, key: string, options: QueryByKeyOptions) =>
      queryByKey(topic, key, options));
  withCommonOptions(program.command('query-by-id')
    .description('show one message by its id (exit code 1 when there is none)')
    .argument('<msgId>', 'the id a send returned (24 hex digits)'))
    .action((msgId: string, options: CommonOptions) => queryById(msgId, options));
}
