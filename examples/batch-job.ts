// A job that reads what is queued and ends. `await using` closes the store when the block is
// left, by its end, a return or a throw: TypeScript 5.2+ compiles it for Node >= 20.
// Run: compile with tsc (lib "esnext.disposable"), then node batch-job.js [dataDir]
import { MessageStore } from 'pocketmq';

const dir = process.argv[2] ?? './data/worker';
{
  await using store = await MessageStore.open(dir);
  const pull = store.createPullConsumer({ group: 'nightly-report',
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
  pull.subscribe('jobs', '*');
  let jobs = 0;
  // autoCommit (the default): each poll commits what the one before returned.
  for (let batch = await pull.poll(500); batch.length > 0; batch = await pull.poll(500)) {
    jobs += batch.length;
  }
  console.log('jobs queued so far:', jobs);
} // here store[Symbol.asyncDispose]() ran, as `await store.close()`: offsets written
console.log('closed');
