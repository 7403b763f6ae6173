/**
 * What every command does with what it is given, as child processes: invalid topic and group
 * names are usage errors (exit code 2, before the store is read), an unknown group is an error
 * (exit code 1), `--dir` defaults to POCKETMQ_DIR, and `stats` of a read-only open shows no
 * latencies of appends or flushes it never made.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../support/dist.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, runCli } from './helpers.js';

const tmp = useTempDirs('pmq-cli-');

beforeAll(() => ensureBuilt());

/** Topic t with one message; group g has consumed it (offsets stored). */
async function seed(dir: string): Promise<void> {
  const store = await openStore(dir);
  try {
    await store.createTopic('t', { queueNums: 1 });
    await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
    const pull = store.createPullConsumer({ group: 'g', autoCommit: false,
      consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
    pull.subscribe('t', '*');
    await pull.start();
    expect(await pull.poll(5000)).toHaveLength(1);
    await pull.commit();
    await pull.shutdown();
  } finally {
    await store.close();
  }
}

describe('pocketmq names, groups and --dir', () => {
  it('an invalid topic or group name is a usage error (exit code 2) in every command',
    async () => {
      const dir = tmp.make();
      await seed(dir);
      const topicCommands = [['topic-status', 'a/b'], ['browse', 'a/b'],
        ['tail', 'a/b', '--count', '1'], ['query-by-key', 'a/b', 'k'], ['send', 'a/b', 'x'],
        ['reset-offset', 'g', 'a/b', '--to-earliest']];
      const groupCommands = [['consumer-progress', 'a.b'], ['dlq', 'list', 'a.b'],
        ['dlq', 'resend', 'a.b'], ['reset-offset', 'a.b', 't', '--to-earliest']];
      for (const args of topicCommands) {
        const run = await runCli([...args, '--dir', dir]);
        expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2,
          stdout: '' });
        expect(run.stderr).toMatch(/^pocketmq: INVALID_TOPIC: invalid topic "a\/b"/);
      }
      for (const args of groupCommands) {
        const run = await runCli([...args, '--dir', dir]);
        expect({ args, code: run.code, stdout: run.stdout }).toEqual({ args, code: 2,
          stdout: '' });
        expect(run.stderr).toMatch(/invalid group "a\.b".*1 to 120 of the characters/);
      }
    });

  it('consumer-progress of an unknown group says so and exits 1', async () => {
    const dir = tmp.make();
    await seed(dir);
    for (const json of [[], ['--json']]) {
      const run = await runCli(['consumer-progress', 'nobody', '--dir', dir, ...json]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(`pocketmq: no consumer group nobody in ${dir}: it has no ` +
        'stored offsets (a group has some once it has consumed)\n');
    }
    const known = await runCli(['consumer-progress', 'g', '--dir', dir]);
    expect(known.code).toBe(0);
    expect(known.stdout).toMatch(/^g +t +0 +1 +1 +0 /m);
  });

  it('--dir defaults to POCKETMQ_DIR, and --dir wins over it', async () => {
    const dir = tmp.make();
    await seed(dir);
    const fromEnv = await runCli(['topics', '--json'], { POCKETMQ_DIR: dir });
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(fromEnv.stdout)).toEqual({ topics: [{ topic: 't', queueNums: 1,
      messages: 1 }] });
    const missing = `${tmp.make()}/missing`;
    const wins = await runCli(['topics', '--json', '--dir', dir], { POCKETMQ_DIR: missing });
    expect(wins.code).toBe(0);
    const wrongEnv = await runCli(['topics'], { POCKETMQ_DIR: missing });
    expect(wrongEnv.code).toBe(2);
    expect(wrongEnv.stderr).toMatch(/^pocketmq: STORE_NOT_FOUND: .*missing/);
    const empty = await runCli(['topics'], { POCKETMQ_DIR: '' });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/POCKETMQ_DIR' is invalid. expected a directory/);
    const help = await runCli(['topics', '--help']);
    expect(help.stdout).toMatch(/--dir <dataDir> +the store's data directory \(env: POCKETMQ_DIR\)/);
  });

  it('stats of a read-only open shows no latencies of appends or flushes it never made',
    async () => {
      const dir = tmp.make();
      await seed(dir);
      const human = await runCli(['stats', '--dir', dir]);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/^appends +none \(a read-only open appends nothing\)$/m);
      expect(human.stdout).toMatch(/^flushes +none \(a read-only open flushes nothing\)$/m);
      expect(human.stdout).not.toMatch(/latency|p50|p99/);
      const json = await runCli(['stats', '--dir', dir, '--json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ readOnly: true,
        appended: { messages: 0, bytes: 0 }, appendLatency: { count: 0 },
        flushLatency: { count: 0 } });
    });
});
