/**
 * Replication between real processes on loopback (test/fixtures/replication-node.mjs): a
 * follower catches up with thousands of messages; under SYNC_MASTER every SEND_OK message is on
 * the follower when the master is killed mid-stream, a send without a follower is
 * SLAVE_NOT_AVAILABLE and one with a frozen follower FLUSH_SLAVE_TIMEOUT; a restarted follower
 * resumes from its own offset; a follower whose log diverged from a crashed master truncates it
 * to the common prefix and says so; a promoted follower takes writes and its consumer groups
 * resume from the copied offsets; a wrong or missing token is refused and logged.
 *
 * Ports come from port 0 (`store.haPort`), except a master restarted on its old port.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MessageStoreOptions } from '../../lib/message-store.js';
import { useTempDirs } from '../support/backends.js';
import { ensureBuilt } from '../support/dist.js';
import { SEGMENT, StoreProcess, type SentLine } from './helpers.js';

const tmp = useTempDirs('pmq-repl-');
const running: StoreProcess[] = [];

beforeAll(() => ensureBuilt(), 120_000);

afterEach(async () => {
  for (const p of running.splice(0)) {
    p.process.kill('SIGCONT');
    await p.kill();
  }
});

async function start(dir: string, options: MessageStoreOptions):
  Promise<{ node: StoreProcess; port: number | null; role: string }> {
  const node = new StoreProcess(dir, { commitLogSegmentSize: SEGMENT, ...options });
  running.push(node);
  const { port, role } = await node.ready();
  return { node, port, role };
}

async function master(options: MessageStoreOptions = {}, dir = tmp.make()):
  Promise<{ node: StoreProcess; port: number; dir: string }> {
  const { node, port } = await start(dir, { brokerRole: 'ASYNC_MASTER', haListenPort: 0,
    ...options });
  expect(port).toBeGreaterThan(0);
  return { node, port: port!, dir };
}

async function follower(port: number, options: MessageStoreOptions = {}, dir = tmp.make()):
  Promise<{ node: StoreProcess; dir: string }> {
  const { node, role } = await start(dir, { brokerRole: 'SLAVE',
    haMasterAddress: `127.0.0.1:${port}`, haConfigSyncIntervalMs: 200, ...options });
  expect(role).toBe('slave');
  return { node, dir };
}

/** Polls `check` until it holds; fails after `timeoutMs`. */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000):
  Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Wait until the follower's log ends at `offset`. */
async function caughtUp(node: StoreProcess, offset: number): Promise<void> {
  let at = -1;
  await until(async () => (at = await node.offset()) === offset,
    `the follower to reach ${offset} (at ${at})`).catch((err: Error) => {
    throw new Error(`${err.message}; it is at ${at}`);
  });
}

/** How many of `ids` the store cannot view, and a few of them. */
async function missing(node: StoreProcess, ids: readonly string[]): Promise<string> {
  const file = path.join(tmp.make(), 'ids.txt');
  fs.writeFileSync(file, ids.join('\n'));
  return (await node.ask(`missing ${file}`, 'missing', 30_000)).trim();
}

async function sendAll(node: StoreProcess, n: number, topic: string, batch = 500):
  Promise<SentLine[]> {
  const sent: SentLine[] = [];
  for (let done = 0; done < n; done += batch) {
    sent.push(...await node.send(Math.min(batch, n - done), topic));
  }
  return sent;
}

describe('replication between processes', () => {
  it('a follower catches up with thousands of messages and refuses producers', async () => {
    const m = await master();
    const early = await sendAll(m.node, 2000, 'Catch');
    const f = await follower(m.port);
    const late = await sendAll(m.node, 1500, 'Catch');
    const sent = [...early, ...late];
    expect(sent.every((s) => s.status === 'SEND_OK')).toBe(true);
    await caughtUp(f.node, await m.node.offset());
    expect(await m.node.offset()).toBeGreaterThan(SEGMENT);
    expect(await missing(f.node, sent.map((s) => s.msgId))).toBe('0');
    expect(await f.node.ask('consume g1 Catch 3500', 'consumed')).toBe('3500');
    await expect(f.node.send(1, 'Catch')).rejects.toThrow(/NOT_MASTER/);
    const status = JSON.parse(await m.node.ask('status', 'status')) as
      { followers: { ackOffset: number; lagBytes: number }[] };
    expect(status.followers).toHaveLength(1);
    expect(status.followers[0]!.ackOffset).toBe(await m.node.offset());
  });

  it('SYNC_MASTER: every SEND_OK is on the follower when the master is killed mid-stream',
    async () => {
      const m = await master({ brokerRole: 'SYNC_MASTER', flushDiskType: 'SYNC_FLUSH' });
      const f = await follower(m.port, { flushDiskType: 'SYNC_FLUSH' });
      await f.node.waitFor((l) => l.includes('following 127.0.0.1'), 'following');
      m.node.command('stream Sync 64');
      await m.node.waitFor((_l) => m.node.lines.filter((x) => x.startsWith('ok ')).length >= 1500,
        '1500 SEND_OK', 25_000);
      await m.node.kill('SIGKILL');
      const ok = m.node.lines.filter((l) => l.startsWith('ok ')).map((l) => l.slice(3));
      const notOk = m.node.lines.filter((l) => l.startsWith('not-ok '));
      expect(ok.length).toBeGreaterThanOrEqual(1500);
      expect(notOk).toEqual([]);
      expect(await missing(f.node, ok)).toBe('0');
    });

  it('SYNC_MASTER without a follower: SLAVE_NOT_AVAILABLE, the message stored', async () => {
    const m = await master({ brokerRole: 'SYNC_MASTER' });
    const sent = await m.node.send(20, 'Alone');
    expect(sent.map((s) => s.status)).toEqual(Array(20).fill('SLAVE_NOT_AVAILABLE'));
    expect(await missing(m.node, sent.map((s) => s.msgId))).toBe('0');
  });

  it('SYNC_MASTER with a frozen follower: FLUSH_SLAVE_TIMEOUT, then SEND_OK once it thaws',
    async () => {
      const m = await master({ brokerRole: 'SYNC_MASTER', syncFlushTimeoutMs: 800 });
      const f = await follower(m.port);
      await f.node.waitFor((l) => l.includes('following 127.0.0.1'), 'following');
      expect((await m.node.send(20, 'Frozen')).map((s) => s.status))
        .toEqual(Array(20).fill('SEND_OK'));
      f.node.process.kill('SIGSTOP');
      try {
        const started = Date.now();
        const timedOut = await m.node.send(20, 'Frozen');
        expect(timedOut.map((s) => s.status)).toEqual(Array(20).fill('FLUSH_SLAVE_TIMEOUT'));
        expect(Date.now() - started).toBeGreaterThanOrEqual(700);
      } finally {
        f.node.process.kill('SIGCONT');
      }
      expect((await m.node.send(20, 'Frozen')).map((s) => s.status))
        .toEqual(Array(20).fill('SEND_OK'));
      await caughtUp(f.node, await m.node.offset());
    });

  it('a restarted follower resumes from its own offset', async () => {
    const m = await master();
    const f = await follower(m.port);
    const first = await sendAll(m.node, 800, 'Resume');
    const held = await m.node.offset();
    await caughtUp(f.node, held);
    await f.node.kill('SIGKILL');
    const second = await sendAll(m.node, 800, 'Resume');
    const again = await follower(m.port, {}, f.dir);
    await again.node.waitFor((l) => l.includes(`following 127.0.0.1:${m.port} from offset `),
      'following');
    const from = /from offset (\d+)/.exec(again.node.lines.find((l) =>
      l.includes('from offset'))!)![1];
    expect(Number(from)).toBe(held);
    await caughtUp(again.node, await m.node.offset());
    expect(await missing(again.node, [...first, ...second].map((s) => s.msgId))).toBe('0');
  });

  it('a follower whose log diverged from a crashed master truncates to the common prefix',
    async () => {
      // ASYNC_FLUSH with flushes far apart: the master's tail is in the page cache only; the
      // test then plays the machine's crash by zeroing that tail in its file.
      const options: MessageStoreOptions = { commitLogSegmentSize: 4 * SEGMENT,
        flushIntervalMs: 600_000, flushThoroughIntervalMs: 600_000 };
      const m = await master(options);
      const f = await follower(m.port, { commitLogSegmentSize: 4 * SEGMENT });
      const kept = await m.node.send(100, 'Diverge');
      const lost = await m.node.send(100, 'Diverge');
      const end = await m.node.offset();
      await caughtUp(f.node, end);
      await m.node.kill('SIGKILL');
      const cut = lost[0]!.commitLogOffset;
      expect(end).toBeLessThan(4 * SEGMENT);
      const segment = path.join(m.dir, 'commitlog', String(0).padStart(20, '0'));
      const fd = fs.openSync(segment, 'r+');
      fs.writeSync(fd, Buffer.alloc(end - cut), 0, end - cut, cut);
      fs.closeSync(fd);
      const restarted = await master({ ...options, haListenPort: m.port }, m.dir);
      expect(await restarted.node.offset()).toBe(cut);
      const after = await restarted.node.send(50, 'Diverge');
      await f.node.waitFor((l) => l.includes('diverged'), 'the divergence line');
      const line = f.node.lines.find((l) => l.includes('diverged'))!;
      expect(line).toMatch(new RegExp(`^log warn .*truncated it to offset ${cut}, dropping ` +
        `${end - cut} bytes`));
      await caughtUp(f.node, await restarted.node.offset());
      expect(await missing(f.node, [...kept, ...after].map((s) => s.msgId))).toBe('0');
      expect(await missing(f.node, lost.map((s) => s.msgId))).toMatch(/^100 /);
    });

  it('a promoted follower takes writes; its consumer groups resume from the copied offsets',
    async () => {
      const m = await master();
      const f = await follower(m.port);
      await sendAll(m.node, 300, 'Promo');
      const consumed = Number(await m.node.ask('consume gp Promo 120', 'consumed'));
      expect(consumed).toBeGreaterThanOrEqual(120);
      expect(consumed).toBeLessThan(300);
      await caughtUp(f.node, await m.node.offset());
      // The consumer offsets reach the follower with a config copy (every 200 ms).
      expect(await m.node.ask('committed gp', 'committed')).toBe(String(consumed));
      await until(async () => await f.node.ask('committed gp', 'committed') === String(consumed),
        'the copied offsets');
      await m.node.kill('SIGKILL');
      expect(await f.node.ask('promote', 'promoted')).toBe('owner');
      expect(f.node.logged('promoted: it takes writes from offset')).toBe(true);
      expect(await f.node.ask('consume gp Promo 300', 'consumed')).toBe(String(300 - consumed));
      const copied = await f.node.offset();
      const sent = await f.node.send(10, 'Promo');
      expect(sent.map((s) => s.status)).toEqual(Array(10).fill('SEND_OK'));
      expect(Math.min(...sent.map((s) => s.commitLogOffset))).toBe(copied);
      expect(await f.node.ask('consume gp Promo 300', 'consumed')).toBe('10');
    });

  it('a wrong or missing token is refused and logged on both sides', async () => {
    const m = await master({ haAuthToken: 'right-token' });
    await m.node.send(10, 'Token');
    const wrong = await follower(m.port, { haAuthToken: 'wrong-token' });
    const none = await follower(m.port);
    await m.node.waitFor((l) => l.includes('authentication failed: a wrong token'), 'wrong');
    await m.node.waitFor((l) => l.includes('authentication failed: no token'), 'none');
    await wrong.node.waitFor((l) => /^log error .*refused: authentication failed/.test(l),
      'the follower\'s error');
    expect(await wrong.node.offset()).toBe(0);
    expect(await none.node.offset()).toBe(0);
    const right = await follower(m.port, { haAuthToken: 'right-token' });
    await caughtUp(right.node, await m.node.offset());
    expect((await m.node.send(5, 'Token')).map((s) => s.status))
      .toEqual(Array(5).fill('SEND_OK'));
  });
});
