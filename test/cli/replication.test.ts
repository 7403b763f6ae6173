/**
 * `pocketmq replication status` and `pocketmq promote` against a real pair of processes
 * (test/fixtures/replication-node.mjs): the master's status over its replication port (token
 * checked), a follower's from its directory, and promotion of a stopped follower's directory,
 * refused while it runs, for a master's directory, and twice.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useTempDirs } from '../support/backends.js';
import { ensureBuilt } from '../support/dist.js';
import { StoreProcess } from '../replication/helpers.js';
import { runCli } from './helpers.js';

const tmp = useTempDirs('pmq-cli-repl-');
const running: StoreProcess[] = [];

beforeAll(() => ensureBuilt(), 120_000);

afterEach(async () => {
  for (const p of running.splice(0)) await p.kill();
});

function node(dir: string, options: Record<string, unknown>): StoreProcess {
  const p = new StoreProcess(dir, { commitLogSegmentSize: 1 << 20, ...options });
  running.push(p);
  return p;
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Status {
  role: string;
  brokerRole: string;
  maxOffset: number;
  running?: boolean;
  followers: { address: string; ackOffset: number; lagBytes: number }[];
  master: { masterAddress: string; connected: boolean; offset: number } | null;
}

async function statusJson(args: string[]): Promise<Status> {
  const run = await runCli(['replication', 'status', ...args, '--json']);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as Status;
}

describe('pocketmq replication status and promote', () => {
  it('shows the master over its port and the follower from its directory; promotes it',
    async () => {
      const masterDir = tmp.make();
      const followerDir = tmp.make();
      const master = node(masterDir, { brokerRole: 'ASYNC_MASTER', haListenPort: 0,
        haAuthToken: 'tok' });
      const port = (await master.ready()).port!;
      const follower = node(followerDir, { brokerRole: 'SLAVE', haAuthToken: 'tok',
        haMasterAddress: `127.0.0.1:${port}` });
      await follower.ready();
      await master.send(100, 'Cli');
      const end = await master.offset();
      const address = `127.0.0.1:${port}`;
      await until(async () => (await statusJson(['--master', address, '--token', 'tok']))
        .followers[0]?.ackOffset === end, 'the acknowledgement');
      const m = await statusJson(['--master', address, '--token', 'tok']);
      expect(m).toMatchObject({ role: 'master', brokerRole: 'ASYNC_MASTER', maxOffset: end,
        master: null });
      expect(m.followers).toEqual([expect.objectContaining({ ackOffset: end, lagBytes: 0 })]);
      const human = await runCli(['replication', 'status', '--master', address],
        { POCKETMQ_HA_TOKEN: 'tok' });
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/^role\s+master \(ASYNC_MASTER\)$/m);
      expect(human.stdout).toMatch(/followers:\n\s+ADDRESS\s+ACKED OFFSET\s+LAG/);
      expect(human.stdout).toContain(`${end}`);
      const refused = await runCli(['replication', 'status', '--master', address]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/refused: authentication failed: no token/);
      // The follower's directory: its status file, rewritten while it runs.
      await until(async () => (await statusJson([followerDir])).master?.offset === end,
        'the follower\'s status file');
      const f = await statusJson(['--dir', followerDir]);
      expect(f).toMatchObject({ role: 'slave', brokerRole: 'SLAVE', running: true,
        master: { masterAddress: address, connected: true, offset: end } });
      const followerHuman = await runCli(['replication', 'status', followerDir]);
      expect(followerHuman.stdout).toMatch(/^master\s+127\.0\.0\.1:\d+ \(connected\), 0 B behind$/m);
      expect(followerHuman.stdout).toMatch(/^store\s+running \(pid \d+\)/m);
      // Promotion: refused while it runs, done once it stopped, refused again after.
      const busy = await runCli(['promote', followerDir]);
      expect(busy.code).toBe(3);
      expect(busy.stderr).toMatch(/is running: call promote\(\) in it, or stop it first/);
      await follower.close();
      const done = await runCli(['promote', followerDir]);
      expect(done.stderr).toBe('');
      expect(done.code).toBe(0);
      expect(done.stdout).toBe(`promoted ${followerDir}: it opens as a master and takes ` +
        `writes from offset ${end}\n`);
      const twice = await runCli(['promote', '--dir', followerDir]);
      expect(twice.code).toBe(2);
      expect(twice.stderr).toMatch(/was promoted already/);
      const notFollower = await runCli(['promote', masterDir]);
      expect(notFollower.code).toBe(2);
      expect(notFollower.stderr).toMatch(/is not a follower's: its store ran as ASYNC_MASTER/);
      // Opened as a follower again, the promoted directory takes writes after the copied log.
      const reopened = node(followerDir, { brokerRole: 'SLAVE', haAuthToken: 'tok',
        haMasterAddress: address });
      expect((await reopened.ready()).role).toBe('owner');
      const sent = await reopened.send(3, 'Cli');
      expect(sent.map((s) => [s.status, s.commitLogOffset >= end])).toEqual(
        Array(3).fill(['SEND_OK', true]));
    });

  it('needs a directory or --master, and a store with a replication status', async () => {
    const none = await runCli(['replication', 'status']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/give a data directory or --master host:port/);
    const missing = await runCli(['replication', 'status', tmp.make()]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/STORE_NOT_FOUND/);
    const badAddress = await runCli(['replication', 'status', '--master', 'nowhere']);
    expect(badAddress.code).toBe(2);
    expect(badAddress.stderr).toMatch(/--master must be 'host:port'/);
  });
});
