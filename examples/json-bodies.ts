// JSON bodies: a body is bytes (a string is stored as UTF-8), so send JSON.stringify(value) and
// parse m.body.toString('utf8'). Two small typed helpers keep both sides of a topic in step.
// Run: compile with tsc, then node json-bodies.js [dataDir]
import { MessageStore, type MessageExt, type Producer, type SendResult } from 'pocketmq';

interface Order { id: string; amount: number; items: string[] }

/** Send `value` as a JSON body; `amount` as a property too, so SQL92 filters can match it. */
function sendJson<T>(producer: Producer, topic: string, value: T,
  extra: { tags?: string; keys?: string[]; properties?: Record<string, string | number> } = {},
): Promise<SendResult> {
  return producer.send({ topic, body: JSON.stringify(value), ...extra });
}

/** The message's body parsed as JSON. The cast trusts the producer: check what others send. */
function jsonOf<T>(m: MessageExt): T {
  return JSON.parse(m.body.toString('utf8')) as T;
}

const store = await MessageStore.open(process.argv[2] ?? './data/json');
try {
  const producer = store.createProducer({ group: 'orders-producer' });
  const order: Order = { id: 'o-1', amount: 150, items: ['book', 'pen'] };
  await sendJson(producer, 'orders', order, { keys: [order.id],
    properties: { amount: order.amount } });

  const pull = store.createPullConsumer({ group: 'orders-reader',
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
  pull.subscribe('orders', '*');
  for (const m of await pull.poll(1000)) {
    const got = jsonOf<Order>(m);
    console.log('order', got.id, got.amount, got.items.join(' + '));
  }
} finally {
  await store.close();
}
