// A worker process: handles the jobs of a store until SIGTERM or SIGINT (Ctrl-C), then closes
// the store cleanly, so the group resumes exactly after the last job handled.
// Run: node examples/worker.js [dataDir]
import { MessageStore } from 'pocketmq';

const store = await MessageStore.open(process.argv[2] ?? './data/worker');

const consumer = store.createPushConsumer({ group: 'worker',
  consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
consumer.subscribe('jobs', '*');
consumer.registerMessageListener(async (msgs) => {
  for (const m of msgs) console.log('handled', m.body.toString());
  return 'CONSUME_SUCCESS';
});
await consumer.start();

// The group's backlog once a minute, until shutdown clears the timer.
const report = setInterval(() => {
  store.consumerProgress('worker').then(
    (queues) => console.log('backlog', queues.reduce((n, q) => n + q.lag, 0)),
    (err) => console.error('progress:', err.message));
}, 60_000);

async function shutdown(signal) {
  console.log(`${signal}: closing`);
  clearInterval(report);
  // Waits for listener calls in flight, writes the offsets, flushes and unlocks the store.
  await store.close();
  console.log('closed');
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  // once: a second signal while closing ends the process the default way, at once.
  process.once(signal, () => {
    shutdown(signal).catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
  });
}
console.log('worker started');
