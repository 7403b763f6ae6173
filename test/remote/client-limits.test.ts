/**
 * A multiProcess client's store: what answers through the owner, and what cannot answer at
 * once there and throws NOT_SUPPORTED (never a TypeError or a wrong answer).
 */
import { describe, expect, it } from 'vitest';
import { storeInternals } from '../../lib/internal.js';
import { MessageStore } from '../../lib/message-store.js';
import { useTempDirs } from '../support/backends.js';

const tmp = useTempDirs('pmq-client-api-');

describe('a multiProcess client', () => {
  it('answers through the owner, or throws NOT_SUPPORTED', async () => {
    const dir = tmp.make();
    const owner = await MessageStore.open(dir, { multiProcess: true });
    const client = await MessageStore.open(dir, { multiProcess: true });
    try {
      expect([owner.role, client.role]).toEqual(['owner', 'client']);
      await client.createTopic('t', { queueNums: 2 });
      const producer = client.createProducer({ group: 'p' });
      const sent = await producer.send({ topic: 't', body: 'x', keys: 'k1' });
      expect(sent.status).toBe('SEND_OK');
      // Through the owner: the same answers as in the owner.
      expect(await client.maxOffset('t', sent.queueId)).toBe(1);
      expect((await client.viewMessage(sent.msgId))?.body.toString()).toBe('x');
      expect((await client.queryMessage({ topic: 't', key: 'k1' })).length).toBe(1);
      expect((await client.stats()).topics.map((t) => t.topic)).toContain('t');
      expect((await client.browse({ topic: 't', queueId: sent.queueId })).messages.length)
        .toBe(1);
      expect(owner.topics().map((t) => t.topic)).toContain('t');
      // Synchronous reads of the owner's state: NOT_SUPPORTED with a way out.
      expect(() => client.topics()).toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED',
        message: expect.stringContaining('stats()') }));
      const pull = client.createPullConsumer({ group: 'g',
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      pull.subscribe('t');
      await pull.poll(100);
      expect(() => pull.committed({ topic: 't', queueId: sent.queueId }))
        .toThrow(expect.objectContaining({ code: 'NOT_SUPPORTED' }));
      await pull.shutdown();
      // The engine is not in this process.
      expect(() => storeInternals(client)).toThrow(expect.objectContaining({
        code: 'NOT_SUPPORTED' }));
    } finally {
      await client.close();
      await owner.close();
    }
  }, 30_000);
});
