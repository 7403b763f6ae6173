/**
 * The command next to an application that owns the store (test/fixtures/cli-owner.mjs): the
 * read-only commands work and see what the owner flushed, the changing ones refuse with exit
 * code 3 and say who holds it, and `tail` follows what the owner sends after it started.
 */
import { spawn } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../support/dist.js';
import { useTempDirs } from '../support/backends.js';
import { CLI, cliJson, Lines, Owner, runCli } from './helpers.js';

const tmp = useTempDirs('pmq-cli-');
const owners: Owner[] = [];

beforeAll(() => ensureBuilt());
afterEach(async () => {
  for (const o of owners.splice(0)) await o.close();
});

async function startOwner(dir: string, multiProcess = false): Promise<Owner> {
  const owner = await Owner.start(dir, multiProcess);
  owners.push(owner);
  return owner;
}

describe('while another process owns the store', () => {
  it('read-only commands work and changing ones refuse with exit code 3', async () => {
    const dir = tmp.make();
    const owner = await startOwner(dir);
    const sent = await owner.send({ topic: 'orders', body: 'first', keys: ['o-1'] });
    const topics = await cliJson<{ topics: { topic: string; messages: number }[] }>(
      ['topics', '--dir', dir]);
    expect(topics.topics).toEqual([expect.objectContaining({ topic: 'orders', messages: 1 })]);
    const byId = await cliJson<{ message: { body: string } }>(
      ['query-by-id', sent.msgId, '--dir', dir]);
    expect(byId.message.body).toBe('first');

    const send = await runCli(['send', 'orders', 'x', '--dir', dir]);
    expect(send.code).toBe(3);
    expect(send.stdout).toBe('');
    expect(send.stderr).toBe(`pocketmq: the store in ${dir} is open in another process ` +
      `(pid ${owner.pid}); stop it first, or use a read-only command (topics, browse, stats, ` +
      '...), which works while it runs\n');
    const reset = await runCli(['reset-offset', 'g', 'orders', '--to-latest', '--dir', dir]);
    expect(reset.code).toBe(3);

    // The owner is unharmed: it goes on sending, and the command sees that too.
    await owner.send({ topic: 'orders', body: 'second' });
    const status = await cliJson<{ messages: number }>(['topic-status', 'orders', '--dir', dir]);
    expect(status.messages).toBe(2);
  });

  it('changing commands go through an owner that serves other processes', async () => {
    const dir = tmp.make();
    const owner = await startOwner(dir, true);
    await owner.send({ topic: 'orders', body: 'first' });
    const send = await runCli(['send', 'orders', 'from the cli', '--dir', dir]);
    expect(send.stderr).toBe('');
    expect(send.code).toBe(0);
    const reset = await runCli(['reset-offset', 'g', 'orders', '--to-latest', '--dir', dir]);
    expect(reset.code).toBe(0);
    // The owner's store holds the command's message: it sends after it, and both are counted.
    await owner.send({ topic: 'orders', body: 'second' });
    const status = await cliJson<{ messages: number }>(['topic-status', 'orders', '--dir', dir]);
    expect(status.messages).toBe(3);
  });

  it('tail follows the messages sent after it started', async () => {
    const dir = tmp.make();
    const owner = await startOwner(dir);
    await owner.send({ topic: 'orders', body: 'before' });
    const child = spawn(process.execPath, [CLI, 'tail', 'orders', '--dir', dir, '--json',
      '--interval', '20', '--count', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout = new Lines(child.stdout);
    const stderr = new Lines(child.stderr);
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await stderr.find((l) => l.startsWith('pocketmq: following orders'), 'tail to start');
    const a = await owner.send({ topic: 'orders', body: 'after-1', tags: 'T' });
    await owner.send({ topic: 'orders', body: 'after-2' });
    expect(await exited).toBe(0);
    const lines = stdout.all.filter((l) => l !== '').map((l) => JSON.parse(l) as
      { msgId: string; body: string; tags: string | null });
    expect(lines.map((m) => m.body)).toEqual(['after-1', 'after-2']);
    expect(lines[0]).toMatchObject({ msgId: a.msgId, tags: 'T' });
  });

  it('tail stops on SIGINT with exit code 0', async () => {
    const dir = tmp.make();
    const owner = await startOwner(dir);
    await owner.send({ topic: 'orders', body: 'old' });
    const child = spawn(process.execPath, [CLI, 'tail', 'orders', '--dir', dir,
      '--from-beginning', '--interval', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout = new Lines(child.stdout);
    const stderr = new Lines(child.stderr);
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await stderr.find((l) => l.includes('from the beginning'), 'tail to start');
    await stdout.find((l) => l.endsWith(' old'), 'the stored message');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stdout.all[0]).toMatch(/^QUEUE +OFFSET +MSGID/);
  });
});
