// Retries and the dead-letter queue: a listener that fails gets the message again after the
// retry backoff, `maxReconsumeTimes` times; then it goes to %DLQ%<group>, where another consumer
// can watch for it, and `resendDeadLetters` sends it back once the cause is fixed.
// Run: node examples/retries-dlq.js [dataDir]
import { MessageStore } from 'pocketmq';

/** `promise`, or an error after `ms`: a demo should fail, never hang. */
function within(ms, what, promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// Backoff of redelivery n is delay level 2 + n: short levels make this demo quick (the
// default, '1s 5s 10s 30s 1m ...', waits 10 s, then 30 s, 1 m, ...).
const store = await MessageStore.open(process.argv[2] ?? './data/retries',
  { messageDelayLevel: '100ms 100ms 100ms 200ms 300ms' });
const producer = store.createProducer({ group: 'payments-producer' });
await producer.send({ topic: 'payments', body: 'charge order o-1', keys: ['o-1'] });

let cardDeclined = true;
const payments = store.createPushConsumer({ group: 'payments', maxReconsumeTimes: 2,
  consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
payments.subscribe('payments', '*');
payments.registerMessageListener(async (msgs) => {
  for (const m of msgs) console.log('attempt', m.reconsumeTimes + 1, m.body.toString());
  // 'RECONSUME_LATER' (or a throw): this message comes again after the backoff.
  return cardDeclined ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
});

// Dead letters are messages too: another group consumes %DLQ%payments.
const deadLetter = new Promise((resolve) => {
  const watch = store.createPushConsumer({ group: 'payments-dlq-watch',
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
  watch.subscribe('%DLQ%payments', '*');
  watch.registerMessageListener(async (msgs) => {
    for (const m of msgs) console.log('dead letter', m.topic, m.body.toString());
    resolve();
    return 'CONSUME_SUCCESS';
  });
  void watch.start();
});
await payments.start();
await within(10_000, 'dead letter', deadLetter);

// Fixed: resend the dead letters to their topics. The group must not be consuming (BUSY).
cardDeclined = false;
await payments.shutdown();
const { resent, remaining } = await store.resendDeadLetters('payments');
console.log('resent', resent, 'remaining', remaining);

const handled = new Promise((resolve) => {
  const again = store.createPushConsumer({ group: 'payments' });
  again.subscribe('payments', '*');
  again.registerMessageListener(async (msgs) => {
    for (const m of msgs) console.log('handled', m.body.toString(), 'after the resend');
    resolve();
    return 'CONSUME_SUCCESS';
  });
  void again.start();
});
await within(10_000, 'redelivery after the resend', handled);
await store.close();
