/**
 * The config files a follower copies from its master (in `<dataDir>/config/`): topics,
 * consumer offsets and delay progress. Replication moves their bytes only; the broker of the
 * follower checks and applies them (MessageStore wires it). Names outside this list are refused.
 */
export const CONFIG_FILE_NAMES: readonly string[] = Object.freeze([
  'topics.json', 'consumerOffset.json', 'delayOffset.json',
]);
