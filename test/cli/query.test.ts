/**
 * The reading commands as child processes against a real store: `query-by-key`, `query-by-id`,
 * `browse` (paging options, body encodings, the streamed JSON) and `trace`.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/message-store.js';
import { ensureBuilt } from '../support/dist.js';
import { useTempDirs } from '../support/backends.js';
import { cliJson, openStore, runCli } from './helpers.js';

const tmp = useTempDirs('pmq-cli-');

beforeAll(() => ensureBuilt());

interface JsonMessage {
  msgId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  tags: string | null;
  keys: string[];
  properties: Record<string, string>;
  bodyEncoding: 'utf8' | 'base64';
  body: string;
}

const BINARY = Buffer.from([0, 1, 2, 0xff, 0xfe]);

/** t: 2 queues; queue 0 gets m0..m4, queue 1 the binary body; returns the msgIds. */
async function seed(dir: string): Promise<string[]> {
  const store = await openStore(dir);
  try {
    await store.createTopic('t', { queueNums: 2 });
    const producer = store.createProducer({ group: 'pg' });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await producer.send({ topic: 't', body: `m${i}\tline`, tags: i % 2 ? 'odd' : 'even',
        keys: [`k${i}`, 'shared'], properties: { n: i } }, { selector: () => 0 });
      ids.push(r.msgId);
    }
    ids.push((await producer.send({ topic: 't', body: BINARY, keys: 'bin' },
      { selector: () => 1 })).msgId);
    return ids;
  } finally {
    await store.close();
  }
}

describe('pocketmq query-by-key and query-by-id', () => {
  it('finds messages by key, newest first, and one message by id', async () => {
    const dir = tmp.make();
    const ids = await seed(dir);
    const byKey = await cliJson<{ messages: JsonMessage[] }>(
      ['query-by-key', 't', 'shared', '--dir', dir, '--max', '3']);
    expect(byKey.messages.map((m) => m.body)).toEqual(['m4\tline', 'm3\tline', 'm2\tline']);
    const one = await cliJson<{ message: JsonMessage }>(['query-by-id', ids[1]!, '--dir', dir]);
    expect(one.message).toMatchObject({ msgId: ids[1], topic: 't', queueId: 0, queueOffset: 1,
      tags: 'odd', keys: ['k1', 'shared'], properties: { n: '1' }, bodyEncoding: 'utf8',
      body: 'm1\tline' });
    const bin = await cliJson<{ message: JsonMessage }>(['query-by-id', ids[5]!, '--dir', dir]);
    expect(bin.message.bodyEncoding).toBe('base64');
    expect(Buffer.from(bin.message.body, 'base64')).toEqual(BINARY);

    const human = await runCli(['query-by-id', ids[1]!, '--dir', dir]);
    expect(human.stdout).toMatch(/^msgId +[0-9A-F]{24}$/im);
    expect(human.stdout).toMatch(/^properties +n="1"$/m);
    expect(human.stdout.endsWith('\nm1\tline\n')).toBe(true);
    const keyTable = await runCli(['query-by-key', 't', 'bin', '--dir', dir]);
    expect(keyTable.stdout).toMatch(/^QUEUE +OFFSET +MSGID +TAGS +KEYS +STORED +SIZE +BODY\n/);
    expect(keyTable.stdout).toMatch(/ 5 B +0x000102fffe\n$/);
  });

  it('an unknown id prints nothing on stdout, an error on stderr, exit code 1', async () => {
    const dir = tmp.make();
    await seed(dir);
    const run = await runCli(['query-by-id', '0'.repeat(24), '--dir', dir, '--json']);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^pocketmq: no message with id 0{24}/);
  });
});

describe('pocketmq browse', () => {
  it('reads queue after queue, from an offset, at most --count, without consuming', async () => {
    const dir = tmp.make();
    await seed(dir);
    type Browse = { topic: string; messages: JsonMessage[];
      queues: { queueId: number; nextOffset: number }[] };
    const all = await cliJson<Browse>(['browse', 't', '--dir', dir]);
    expect(all.messages.map((m) => [m.queueId, m.queueOffset])).toEqual(
      [[0, 0], [0, 1], [0, 2], [0, 3], [0, 4], [1, 0]]);
    const page = await cliJson<Browse>(['browse', 't', '--dir', dir, '--queue', '0',
      '--from', '2', '--count', '2']);
    expect(page.messages.map((m) => m.body)).toEqual(['m2\tline', 'm3\tline']);
    expect(page.queues).toEqual([{ queueId: 0, minOffset: 0, maxOffset: 5, nextOffset: 4 }]);
    const none = await cliJson<Browse>(['browse', 't', '--dir', dir, '--queue', '1',
      '--from', '9']);
    expect(none.messages).toEqual([]);

    const human = await runCli(['browse', 't', '--dir', dir, '--count', '3']);
    const lines = human.stdout.split('\n');
    expect(lines[0]).toMatch(/^QUEUE +OFFSET +MSGID +TAGS +KEYS +STORED +SIZE +BODY$/);
    expect(lines[1]).toMatch(/^ +0 +0 +[0-9A-F]{24} +even +k0,shared +\S+Z +7 B +m0\\tline$/);
    expect(lines[4]).toBe('3 messages; more with --queue 0 --from 3');
    // Browsing consumed nothing: no group has offsets.
    const store = await MessageStore.openReadOnly(dir);
    try {
      expect((await store.stats()).groups).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('refuses bad options as usage errors (exit code 2)', async () => {
    const dir = tmp.make();
    await seed(dir);
    const run = await runCli(['browse', 't', '--dir', dir, '--count', 'many']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--count/);
    const noTopic = await runCli(['browse', 'nope', '--dir', dir]);
    expect(noTopic.code).toBe(1);
    expect(noTopic.stderr).toBe(`pocketmq: no topic nope in ${dir}\n`);
  });
});

describe('pocketmq trace', () => {
  it('shows the events the owner recorded for a message', async () => {
    const dir = tmp.make();
    const store = await MessageStore.open(dir, { commitLogSegmentSize: 4 * 2 ** 20,
      trace: true });
    let msgId: string;
    try {
      const producer = store.createProducer({ group: 'traced' });
      msgId = (await producer.send({ topic: 't', body: 'x' })).msgId;
    } finally {
      await store.close();
    }
    const json = await cliJson<{ events: { type: string; group: string; msgId: string }[] }>(
      ['trace', msgId, '--dir', dir]);
    expect(json.events).toEqual([expect.objectContaining({ type: 'PUB', group: 'traced',
      msgId })]);
    const human = await runCli(['trace', msgId, '--dir', dir]);
    expect(human.stdout).toMatch(/^TIME +EVENT +GROUP/);
    expect(human.stdout).toMatch(/ PUB +traced +.* SEND_OK /);
  });
});
