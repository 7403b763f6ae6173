import { MessageStore, MessageSelector } from 'pocketmq';

const store = await MessageStore.open('./data/example', { flushDiskType: 'SYNC_FLUSH' });

const producer = store.createProducer({ group: 'orders-producer' });
const sent = await producer.send({ topic: 'orders', tags: 'TagA', keys: ['order-1'],
  body: 'hello', properties: { region: 'eu', amount: 150 } });
console.log(sent.status, sent.msgId, sent.queueId, sent.queueOffset); // SEND_OK: on disk

await producer.send({ topic: 'orders', body: 'step 2' }, { shardingKey: 'order-1' }); // ordered
await producer.sendBatch([{ topic: 'orders', body: 'a' }, { topic: 'orders', body: 'b' }]);

const consumer = store.createPushConsumer({ group: 'billing',
  consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
consumer.subscribe('orders', MessageSelector.bySql("region = 'eu' AND amount > 100"));
const billed = new Promise((resolve) => consumer.registerMessageListener(async (msgs) => {
  for (const m of msgs) console.log('billing', m.msgId, m.tags, m.body.toString());
  resolve();
  return 'CONSUME_SUCCESS';                 // 'RECONSUME_LATER' or a throw: redelivered later
}));
await consumer.start();
await billed;                               // the one message the filter lets through

const pull = store.createPullConsumer({ group: 'audit',
  consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
pull.subscribe('orders', 'TagA || TagB');
for (const m of await pull.poll(1000)) console.log('audit', m.queueOffset, m.body.toString());

console.log((await store.viewMessage(sent.msgId))?.body.toString());          // by id
console.log((await store.queryMessage({ topic: 'orders', key: 'order-1' })).length); // by key
console.log(await store.consumerProgress('billing'));                      // lag per queue
await store.close();               // shuts consumers down, writes offsets, flushes, unlocks
