/**
 * The commands that change the store: `send`, `reset-offset` and `dlq resend`. They open it as
 * its owner, so they refuse (exit code 3) while another process has it open.
 */
import { Option, type Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import {
  intOption, timeOption, withCommonOptions, withOwnedStore, type CommonOptions,
} from './context.js';
import { formatTime, renderPairs, renderTable, writeJson, writeOut } from './output.js';

interface SendOptions extends CommonOptions {
  readonly tags?: string | undefined;
  readonly keys?: string | undefined;
  readonly property: Record<string, string>;
  readonly group: string;
}

function collectProperty(value: string, previous: Record<string, string>):
  Record<string, string> {
  const eq = value.indexOf('=');
  if (eq < 1) throw new InvalidArgumentError('expected name=value');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

async function send(topic: string, body: string, options: SendOptions): Promise<void> {
  const result = await withOwnedStore(options.dir, (store) => {
    const producer = store.createProducer({ group: options.group });
    const keys = options.keys?.split(',').filter((k) => k !== '');
    return producer.send({ topic, body, tags: options.tags, keys,
      properties: Object.keys(options.property).length > 0 ? options.property : undefined });
  });
  if (options.json === true) {
    await writeJson(result);
    return;
  }
  await writeOut(renderPairs([['status', result.status], ['msgId', result.msgId],
    ['queue', String(result.queueId)], ['queue offset', String(result.queueOffset)]]));
}

interface ResetOptions extends CommonOptions {
  readonly toTimestamp?: number | undefined;
  readonly toEarliest?: boolean | undefined;
  readonly toLatest?: boolean | undefined;
}

type ResetTarget = 'earliest' | 'latest' | { timestamp: number };

function resetTarget(options: ResetOptions, command: Command): ResetTarget {
  const given = [options.toTimestamp !== undefined, options.toEarliest === true,
    options.toLatest === true].filter(Boolean).length;
  if (given !== 1) {
    command.error('error: reset-offset needs exactly one of --to-timestamp, --to-earliest, ' +
      '--to-latest', { exitCode: 2, code: 'pocketmq.usage' });
  }
  if (options.toTimestamp !== undefined) return { timestamp: options.toTimestamp };
  return options.toEarliest === true ? 'earliest' : 'latest';
}

async function resetOffset(group: string, topic: string, options: ResetOptions,
  command: Command): Promise<void> {
  const to = resetTarget(options, command);
  const queues = await withOwnedStore(options.dir,
    (store) => store.resetConsumerOffset(group, topic, to));
  if (options.json === true) {
    await writeJson({ group, topic, to, queues });
    return;
  }
  const target = typeof to === 'string' ? to : formatTime(to.timestamp);
  await writeOut(`reset ${group} on ${topic} to ${target}\n` + renderTable(
    [{ header: 'queue', align: 'right' }, { header: 'before', align: 'right' },
      { header: 'after', align: 'right' }],
    queues.map((q) => [String(q.queueId), String(q.before), String(q.after)])));
}

interface ResendOptions extends CommonOptions {
  readonly max?: number | undefined;
}

async function resend(group: string, options: ResendOptions): Promise<void> {
  const result = await withOwnedStore(options.dir,
    (store) => store.resendDeadLetters(group, { maxNum: options.max }));
  if (options.json === true) {
    await writeJson({ group, ...result });
    return;
  }
  await writeOut(`resent ${result.resent} dead letter${result.resent === 1 ? '' : 's'} of ` +
    `${group} to their topics; ${result.remaining} remain\n`);
}

export function registerAdminCommands(program: Command): void {
  withCommonOptions(program.command('send')
    .description('send one message (owner: refused while another process has the store open)')
    .argument('<topic>', 'the topic')
    .argument('<body>', 'the body, as UTF-8 text'))
    .option('--tags <tag>', 'the message\'s tag')
    .option('--keys <keys>', 'keys to find it by, comma-separated')
    .option('--property <name=value>', 'a user property (repeatable)', collectProperty, {})
    .option('--group <group>', 'producer group', 'pocketmq-cli')
    .action((topic: string, body: string, options: SendOptions) => send(topic, body, options));
  withCommonOptions(program.command('reset-offset')
    .description('move a consumer group\'s offsets on a topic (owner)')
    .argument('<group>', 'the consumer group')
    .argument('<topic>', 'the topic'))
    .addOption(new Option('--to-timestamp <time>',
      'the first message stored at or after this time (ms or ISO 8601)').argParser(timeOption))
    .option('--to-earliest', 'each queue\'s min offset: consume everything again')
    .option('--to-latest', 'each queue\'s max offset: skip what is stored')
    .action((group: string, topic: string, options: ResetOptions, command: Command) =>
      resetOffset(group, topic, options, command));
}

export function registerDlqResendCommand(dlq: Command): void {
  withCommonOptions(dlq.command('resend')
    .description('send a group\'s dead letters back to their topics (owner)')
    .argument('<group>', 'the consumer group'))
    .option('--max <n>', 'at most this many', intOption(1))
    .action((group: string, options: ResendOptions) => resend(group, options));
}
