/**
 * Consumer groups and the changing commands as child processes against a real store:
 * `consumer-progress`, `reset-offset`, `dlq list`, `dlq resend` and `send`.
 */
import { Checkpoint } from '../../lib/store/checkpoint.js';
import { FileBackend } from '../../lib/store/io/file-backend.js';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../support/dist.js';
import { useTempDirs } from '../support/backends.js';
import { until } from '../support/messaging.js';
import { cliJson, openStore, runCli } from './helpers.js';

const tmp = useTempDirs('pmq-cli-');

beforeAll(() => ensureBuilt());

interface Progress {
  groups: { group: string; lag: number;
    queues: { topic: string; queueId: number; consumerOffset: number; lag: number }[] }[];
}

/**
 * t: 1 queue, 4 messages. Group `g` consumed 3 of them (committed 3). Group `bad` failed the
 * one tagged poison with no retries: it is its only dead letter.
 */
async function seed(dir: string): Promise<void> {
  const store = await openStore(dir);
  try {
    await store.createTopic('t', { queueNums: 1 });
    const producer = store.createProducer({ group: 'pg' });
    for (let i = 0; i < 3; i++) await producer.send({ topic: 't', body: `m${i}` });
    await producer.send({ topic: 't', body: 'poison', tags: 'poison', keys: 'pk' });
    const pull = store.createPullConsumer({ group: 'g', autoCommit: false,
      consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', pullBatchSize: 3 });
    pull.subscribe('t', '*');
    await pull.start();
    expect(await pull.poll(5000)).toHaveLength(3);
    await pull.commit();
    await pull.shutdown();
    const push = store.createPushConsumer({ group: 'bad', maxReconsumeTimes: 0,
      consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
    push.subscribe('t', 'poison');
    push.registerMessageListener(async () => 'RECONSUME_LATER' as const);
    await push.start();
    await until(async () => (await store.queryMessage({ topic: '%DLQ%bad', key: 'pk' }))
      .length === 1, 'the dead letter');
    await push.shutdown();
  } finally {
    await store.close();
  }
}

describe('pocketmq consumer-progress and reset-offset', () => {
  it('shows each group\'s lag, and resets a group to earliest, latest or a time', async () => {
    const dir = tmp.make();
    await seed(dir);
    const all = await cliJson<Progress>(['consumer-progress', '--dir', dir]);
    expect(all.groups.map((g) => g.group)).toEqual(['bad', 'g']);
    const g = await cliJson<Progress>(['consumer-progress', 'g', '--dir', dir]);
    expect(g.groups).toEqual([expect.objectContaining({ group: 'g', lag: 1,
      queues: [expect.objectContaining({ topic: 't', queueId: 0, consumerOffset: 3, lag: 1 })],
    })]);
    const human = await runCli(['consumer-progress', 'g', '--dir', dir]);
    expect(human.stdout).toMatch(
      /^GROUP +TOPIC +QUEUE +BROKER OFFSET +CONSUMER OFFSET +LAG +LAST COMMIT\ng +t +0 +4 +3 +1 /);

    const reset = await cliJson<{ queues: unknown[] }>(
      ['reset-offset', 'g', 't', '--to-earliest', '--dir', dir]);
    expect(reset.queues).toEqual([{ queueId: 0, before: 3, after: 0 }]);
    const after = await cliJson<Progress>(['consumer-progress', 'g', '--dir', dir]);
    expect(after.groups[0]!.lag).toBe(4);
    const future = await cliJson<{ queues: unknown[] }>(['reset-offset', 'g', 't',
      '--to-timestamp', new Date(Date.now() + 60_000).toISOString(), '--dir', dir]);
    expect(future.queues).toEqual([{ queueId: 0, before: 0, after: 4 }]);
  });

  it('needs exactly one target: usage error, exit code 2, nothing changed', async () => {
    const dir = tmp.make();
    await seed(dir);
    for (const targets of [[], ['--to-earliest', '--to-latest']]) {
      const run = await runCli(['reset-offset', 'g', 't', ...targets, '--dir', dir]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/exactly one of --to-timestamp, --to-earliest, --to-latest/);
    }
    const g = await cliJson<Progress>(['consumer-progress', 'g', '--dir', dir]);
    expect(g.groups[0]!.lag).toBe(1);
  });
});

describe('pocketmq dlq', () => {
  it('lists a group\'s dead letters and resends them to their topic', async () => {
    const dir = tmp.make();
    await seed(dir);
    const list = await cliJson<{ group: string; topic: string;
      messages: { body: string; keys: string[]; originTopic: string }[] }>(
      ['dlq', 'list', 'bad', '--dir', dir]);
    expect(list).toMatchObject({ group: 'bad', topic: '%DLQ%bad' });
    expect(list.messages.map((m) => [m.body, m.keys, m.originTopic]))
      .toEqual([['poison', ['pk'], 't']]);
    const table = await runCli(['dlq', 'list', 'bad', '--dir', dir]);
    expect(table.stdout).toMatch(/^ORIGINAL TOPIC +QUEUE +OFFSET +MSGID .*\nt +0 +0 +[0-9A-F]{24} /);
    const none = await cliJson<{ messages: unknown[] }>(['dlq', 'list', 'g', '--dir', dir]);
    expect(none.messages).toEqual([]);

    const resend = await cliJson(['dlq', 'resend', 'bad', '--dir', dir]);
    expect(resend).toEqual({ group: 'bad', resent: 1, remaining: 0 });
    const again = await cliJson<{ messages: { body: string }[] }>(
      ['browse', 't', '--dir', dir, '--from', '4']);
    expect(again.messages.map((m) => m.body)).toEqual(['poison']);
    const human = await runCli(['dlq', 'resend', 'bad', '--dir', dir]);
    expect(human.stdout).toBe('resent 0 dead letters of bad to their topics; 0 remain\n');
  });
});

describe('pocketmq send', () => {
  it('sends a message with tags, keys and properties', async () => {
    const dir = tmp.make();
    await (await openStore(dir)).close();
    const sent = await cliJson<{ status: string; msgId: string }>(['send', 't', 'hello',
      '--tags', 'TagA', '--keys', 'k1,k2', '--property', 'region=eu', '--property', 'n=1',
      '--dir', dir]);
    expect(sent.status).toBe('SEND_OK');
    const found = await cliJson<{ messages: Record<string, unknown>[] }>(
      ['query-by-key', 't', 'k2', '--dir', dir]);
    expect(found.messages).toEqual([expect.objectContaining({ msgId: sent.msgId, body: 'hello',
      tags: 'TagA', keys: ['k1', 'k2'], properties: { region: 'eu', n: '1' } })]);
    // The store was made with 4 MiB segments: the command kept them (no default 64 MiB), as
    // its checkpoint records (the first segment file is short while it grows).
    expect(Checkpoint.peek(new FileBackend(), dir)?.commitLogSegmentSize).toBe(4 * 2 ** 20);
    expect(fs.statSync(path.join(dir, 'commitlog', '0'.repeat(20))).size)
      .toBeLessThanOrEqual(4 * 2 ** 20);
    const bad = await runCli(['send', '%DLQ%bad', 'x', '--dir', dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^pocketmq: INVALID_TOPIC: /);
  });
});
