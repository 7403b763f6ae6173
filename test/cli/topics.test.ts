/**
 * `pocketmq topics`, `topic-status` and `stats` as child processes against a real store: the
 * JSON they print, the human tables, and what happens with no store at all.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../support/dist.js';
import { useTempDirs } from '../support/backends.js';
import { cliJson, openStore, runCli } from './helpers.js';

const tmp = useTempDirs('pmq-cli-');

beforeAll(() => ensureBuilt());

/** orders: 2 queues, 3 + 1 messages; audit: 1 queue, none. */
async function seed(dir: string): Promise<number> {
  const store = await openStore(dir);
  try {
    await store.createTopic('orders', { queueNums: 2 });
    await store.createTopic('audit', { queueNums: 1 });
    const producer = store.createProducer({ group: 'pg' });
    let last = 0;
    for (const [queueId, body] of [[0, 'a'], [0, 'b'], [1, 'c'], [0, 'd']] as const) {
      await producer.send({ topic: 'orders', body }, { selector: () => queueId });
      last = Date.now();
    }
    return last;
  } finally {
    await store.close();
  }
}

describe('pocketmq topics', () => {
  it('lists every topic with its queue and message counts', async () => {
    const dir = tmp.make();
    await seed(dir);
    const json = await cliJson<{ topics: unknown[] }>(['topics', '--dir', dir]);
    expect(json.topics).toEqual([
      { topic: 'audit', queueNums: 1, messages: 0 },
      { topic: 'orders', queueNums: 2, messages: 4 },
    ]);
    const human = await runCli(['topics', '--dir', dir]);
    expect(human.code).toBe(0);
    expect(human.stdout.split('\n')).toEqual([
      'TOPIC   QUEUES  MESSAGES',
      'audit        1         0',
      'orders       2         4',
      '',
    ]);
  });

  it('says there is no store, on stderr with exit code 2, and creates nothing', async () => {
    const dir = `${tmp.make()}/missing`;
    const run = await runCli(['topics', '--dir', dir, '--json']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^pocketmq: STORE_NOT_FOUND: .*missing/);
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const send = await runCli(['send', 'orders', 'x', '--dir', dir]);
    expect(send.code).toBe(2);
    expect(send.stderr).toMatch(/^pocketmq: STORE_NOT_FOUND: .*holds no pocketmq store/);
  });

  it('refuses a missing --dir or an unknown command with usage on stderr, exit code 2',
    async () => {
      const noDir = await runCli(['topics']);
      expect(noDir.code).toBe(2);
      expect(noDir.stderr).toMatch(/--dir/);
      const unknown = await runCli(['topicz', '--dir', tmp.make()]);
      expect(unknown.code).toBe(2);
      expect(unknown.stdout).toBe('');
    });
});

describe('pocketmq topic-status', () => {
  it('per queue: min and max offset, messages, last store time', async () => {
    const dir = tmp.make();
    const before = Date.now();
    const last = await seed(dir);
    const json = await cliJson<{ messages: number; queues: Record<string, number>[] }>(
      ['topic-status', 'orders', '--dir', dir]);
    expect(json.messages).toBe(4);
    expect(json.queues.map(({ lastStoreTimestamp: _, ...q }) => q)).toEqual([
      { queueId: 0, minOffset: 0, maxOffset: 3, messages: 3 },
      { queueId: 1, minOffset: 0, maxOffset: 1, messages: 1 },
    ]);
    for (const q of json.queues) {
      expect(q.lastStoreTimestamp).toBeGreaterThanOrEqual(before);
      expect(q.lastStoreTimestamp).toBeLessThanOrEqual(last);
    }
    const human = await runCli(['topic-status', 'orders', '--dir', dir]);
    expect(human.stdout).toMatch(/^QUEUE {2}MIN OFFSET {2}MAX OFFSET {2}MESSAGES {2}LAST STORED\n/);
    expect(human.stdout).toMatch(/\n {4}0 {11}0 {11}3 {9}3 {2}\d{4}-\d\d-\d\dT[\d:.]+Z\n/);
  });

  it('an unknown topic is an error: exit code 1, nothing on stdout', async () => {
    const dir = tmp.make();
    await seed(dir);
    const run = await runCli(['topic-status', 'nope', '--dir', dir, '--json']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`pocketmq: no topic nope in ${dir}\n`);
  });
});

describe('pocketmq stats', () => {
  it('prints the store statistics as JSON, and as sections and tables with units', async () => {
    const dir = tmp.make();
    await seed(dir);
    const json = await cliJson<{ role: string; topics: { topic: string; messages: number }[] }>(
      ['stats', '--dir', dir]);
    expect(json.role).toBe('readonly');
    expect(json.topics.find((t) => t.topic === 'orders')?.messages).toBe(4);
    const human = await runCli(['stats', '--dir', dir]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^role +readonly$/m);
    expect(human.stdout).toMatch(/^commit log:\n( {2}.*\n)* {2}segment size +4\.00 MiB$/m);
    expect(human.stdout).toMatch(/^topics:\n {2}TOPIC +QUEUES +MESSAGES/m);
    expect(human.stdout).toMatch(/^ {2}orders +2 +4 /m);
  });
});
