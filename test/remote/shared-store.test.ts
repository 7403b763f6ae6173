/**
 * `multiProcess: true` within one process (two opens of one directory: the second is a client
 * over the owner socket), for what the process tests do not cover: transactions checked back
 * through the socket, scheduled messages cancelled by a client, errors carried back coded, and
 * the client taking over when the owner closes.
 */
import { describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/message-store.js';
import { useTempDirs } from '../support/backends.js';
import { rejection } from '../support/errors.js';
import { until } from '../support/messaging.js';

const tmp = useTempDirs('pmq-shared-');

async function pair(options: Record<string, unknown> = {}):
  Promise<{ owner: MessageStore; client: MessageStore }> {
  const dir = tmp.make();
  const owner = await MessageStore.open(dir, { multiProcess: true, ...options });
  const client = await MessageStore.open(dir, { multiProcess: true });
  return { owner, client };
}

describe('a client of the owner process', () => {
  it('sends, queries and gets coded errors through the owner', async () => {
    const { owner, client } = await pair();
    try {
      expect([owner.role, client.role]).toEqual(['owner', 'client']);
      const producer = client.createProducer({ group: 'pg' });
      const sent = await producer.send({ topic: 't', body: Buffer.from([0, 1, 2, 255]),
        keys: 'k', properties: { $b: '1', a: 'x' } });
      const found = await owner.viewMessage(sent.msgId);
      expect([...found!.body]).toEqual([0, 1, 2, 255]);
      expect(found!.properties).toEqual({ $b: '1', a: 'x' });
      expect((await client.queryMessage({ topic: 't', key: 'k' }))[0]!.msgId).toBe(sent.msgId);
      expect((await rejection(producer.send({ topic: 't', body: 'x'.repeat(5 * 2 ** 20) })))
        .code).toBe('MESSAGE_TOO_LARGE');
      expect((await rejection(client.resetConsumerOffset('g', 'nope', 'earliest'))).code)
        .toBe('INVALID_TOPIC');
      const later = await producer.send({ topic: 't', body: 'later',
        deliverAt: Date.now() + 60_000 });
      expect(await client.cancelScheduled(later.msgId)).toBe(true);
      expect(await owner.cancelScheduled(later.msgId)).toBe(false);
    } finally {
      await client.close();
      await owner.close();
    }
  });

  it('runs transactions, checked back through the socket', async () => {
    const { owner, client } = await pair({ transactionTimeoutMs: 0,
      transactionCheckIntervalMs: 20 });
    try {
      let answer: 'UNKNOWN' | 'COMMIT_MESSAGE' = 'UNKNOWN';
      let checks = 0;
      const producer = client.createProducer({ group: 'txg', transactionListener: {
        executeLocalTransaction: () => 'UNKNOWN',
        checkLocalTransaction: () => {
          checks++;
          return answer;
        },
      } });
      const r = await producer.sendMessageInTransaction({ topic: 't', body: 'tx' }, null);
      expect(r.localTransactionState).toBe('UNKNOWN');
      await until(() => checks > 0, 'a check-back in the client');
      answer = 'COMMIT_MESSAGE';
      const pull = owner.createPullConsumer({ group: 'cg',
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      pull.subscribe('t');
      const got = await pull.poll(5000);
      expect(got.map((m) => [m.msgId, m.body.toString()])).toEqual([[r.msgId, 'tx']]);
    } finally {
      await client.close();
      await owner.close();
    }
  });

  it('takes over when the owner closes, keeping its consumers', async () => {
    const { owner, client } = await pair();
    try {
      const seen: string[] = [];
      const consumer = client.createPushConsumer({ group: 'cg',
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      consumer.subscribe('t');
      consumer.registerMessageListener((msgs) => {
        for (const m of msgs) seen.push(m.body.toString());
      });
      await consumer.start();
      const producer = client.createProducer({ group: 'pg' });
      await producer.send({ topic: 't', body: 'before' });
      await until(() => seen.includes('before'), 'the first message');
      await owner.close();
      await until(() => client.role === 'owner', 'the client taking over');
      await producer.send({ topic: 't', body: 'after' });
      await until(() => seen.includes('after'), 'a message after the hand-over');
    } finally {
      await client.close();
      await owner.close();
    }
  });
});
