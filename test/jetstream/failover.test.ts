/**
 * A stream leader killed with SIGKILL while producers send, on a real 3-node cluster: sends
 * wait out the election (retrying with the same message id), producers and consumers carry on
 * with the new leader, and every message that got SEND_OK is read at least once (those in flight
 * to a consumer through the dead server come again after `ackWaitMs`).
 */
import { describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { connectStore, eventually, unique, useNatsCluster } from './support.js';

const cluster = useNatsCluster();

/** The server that leads a topic's stream now, asked on a connection of its own. */
async function streamLeader(servers: string[], topic: string): Promise<string> {
  const nc = await connect({ servers });
  try {
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 1000 });
    const deadline = Date.now() + 20_000;
    for (;;) {
      // During an election there is no leader yet, or no answer.
      const leader = await jsm.streams.info(topic).then((i) => i.cluster?.leader ?? '', () => '');
      if (leader !== '' || Date.now() > deadline) return leader;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await nc.close();
  }
}

describe('JetStreamStore when the stream leader dies', () => {
  it('keeps sending and consuming; every SEND_OK message is read', async () => {
    const c = cluster();
    // Messages a dead server had handed out come again after ackWaitMs: kept short here.
    const store = await connectStore(c, { sendTimeoutMs: 30_000, ackWaitMs: 5000 });
    try {
      const topic = unique('failover');
      const producer = store.createProducer({ group: 'pg' });
      const received = new Set<string>();
      const consumer = store.createPushConsumer({ group: unique('cg'),
        consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
      consumer.subscribe(topic);
      consumer.registerMessageListener((msgs) => {
        for (const m of msgs) received.add(m.body.toString());
      });
      await producer.send({ topic, body: 'first' });
      await consumer.start();
      const acknowledged = new Set<string>(['first']);
      const failures: unknown[] = [];
      // Four senders, each sending one message after another, around the kill.
      let next = 0;
      let killedAfter = -1;
      const sender = async (): Promise<void> => {
        while (next < 400) {
          const body = `m${next++}`;
          try {
            const r = await producer.send({ topic, body }, { shardingKey: body });
            if (r.status === 'SEND_OK') acknowledged.add(body);
          } catch (err) {
            failures.push(err);
          }
        }
      };
      const senders = [sender(), sender(), sender(), sender()];
      await eventually('100 messages sent', () => next >= 100);
      const leader = await streamLeader(c.servers, topic);
      expect(c.nodes.map((n) => n.name)).toContain(leader);
      c.kill(leader);
      killedAfter = next;
      await Promise.all(senders);
      expect(failures).toEqual([]);
      expect(acknowledged.size).toBe(401);
      expect(killedAfter).toBeLessThan(400);
      const newLeader = await streamLeader(c.servers.filter((_, i) => c.nodes[i]!.alive),
        topic);
      expect(newLeader).not.toBe(leader);
      expect(newLeader).not.toBe('');
      await eventually('every acknowledged message read', () =>
        [...acknowledged].every((b) => received.has(b)), 30_000);
      // And the cluster goes on: one more message after the election, end to end.
      await producer.send({ topic, body: 'after' });
      await eventually('the message sent after the election', () => received.has('after'));
    } finally {
      await store.close();
    }
  }, 90_000);
});
