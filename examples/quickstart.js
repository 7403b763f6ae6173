// The README's example: `npm run example` (builds first). Uses ./data/example.
import { MessageStore, MessageSelector } from 'pocketmq';

const store = await MessageStore.open('./data/example', { flushDiskType: 'SYNC_FLUSH' });
const producer = store.createProducer({ group: 'example-producer' });
const sent = await producer.send({
  topic: 'orders', tags: 'TagA', keys: ['order-1'], body: 'hello',
  properties: { region: 'eu', amount: 150 },
});
console.log(sent.status, 'msgId', sent.msgId, 'queue', sent.queueId, 'offset', sent.queueOffset);

const consumer = store.createPushConsumer({
  group: 'example-consumer', consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
});
consumer.subscribe('orders', MessageSelector.bySql("region = 'eu' AND amount > 100"));
const handled = new Promise((resolve) => {
  consumer.registerMessageListener(async (msgs) => {
    for (const m of msgs) console.log('consumed', m.msgId, m.tags, m.body.toString());
    resolve();
    return 'CONSUME_SUCCESS';
  });
});
await consumer.start();
await handled;

console.log('by id:', (await store.viewMessage(sent.msgId))?.body.toString());
console.log('by key:', (await store.queryMessage({ topic: 'orders', key: 'order-1' })).length);
console.log('progress:', await store.consumerProgress('example-consumer'));
await store.close();
