/**
 * The follower of the `replication` benchmark, in its own process as a real follower is:
 * argv[2] is the JSON of { dir, options }; prints `ready` once open, closes and exits when its
 * stdin ends.
 */
import { MessageStore, type MessageStoreOptions } from '../lib/index.js';

const { dir, options } = JSON.parse(process.argv[2]!) as
  { dir: string; options: MessageStoreOptions };
const store = await MessageStore.open(dir, options);
process.stdout.write('ready\n');
process.stdin.resume();
process.stdin.on('end', () => {
  void store.close().then(() => process.exit(0));
});
