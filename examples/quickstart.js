// The README's example: `npm run example` (builds first). Uses ./data/example.
import { MessageStore } from 'pocketmq';

const store = await MessageStore.open('./data/example', { flushDiskType: 'SYNC_FLUSH' });
const r = await store.putMessage({
  topic: 'orders', queueId: 0, tags: 'TagA', keys: ['order-1'],
  body: Buffer.from('hello'), properties: { region: 'eu' },
});
console.log(r.status, 'queue offset', r.queueOffset, 'commit-log offset', r.physicalOffset);

const got = store.getMessage('orders', 0, 0, 32);
for (const m of got.records) console.log(m.queueOffset, m.tags, m.body.toString());

store.visitMessages('orders', 0, 0, 256, (c) => {
  console.log('in place:', c.queueOffset, c.bodyBuffer.toString('utf8', c.bodyOffset,
    c.bodyOffset + c.bodyLength));
});

console.log('by key:', store.queryMessage('orders', 'order-1').length, 'record(s)');
await store.close();
