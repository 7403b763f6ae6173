/**
 * Child process of the recovery scenario: fills a store and reports "done", then waits to be
 * killed with SIGKILL. The ConsumeQueue/checkpoint flush is pushed out of reach, so the parent's
 * recovery has to check (and re-dispatch) the whole commit log.
 */
import { StoreEngine } from '../lib/index.js';

const [dir, countArg, bodyArg] = process.argv.slice(2);
const count = Number(countArg);
const body = Buffer.alloc(Number(bodyArg), 0x72);
const store = await StoreEngine.open(dir!, {
  flushDiskType: 'ASYNC_FLUSH', flushConsumeQueueIntervalMs: 3_600_000,
});
const pending: Promise<unknown>[] = [];
for (let i = 0; i < count; i++) {
  pending.push(store.putMessage({ topic: 'recover', queueId: i % 4, body }));
  if (pending.length === 4096) await Promise.all(pending.splice(0));
}
await Promise.all(pending);
await store.flushed();
process.stdout.write(`done ${store.commitLogMaxOffset}\n`);
setInterval(() => undefined, 1000);
