/**
 * `pocketmq verify` as a child process: a healthy store exits 0; a record whose bytes were
 * changed on disk is found (exit code 1, the problem named with its offset); no store at all
 * is exit code 2. Piped, it draws no progress bar.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../support/dist.js';
import { useTempDirs } from '../support/backends.js';
import { openStore, runCli } from './helpers.js';

const tmp = useTempDirs('pmq-cli-');

beforeAll(() => ensureBuilt());

interface Report {
  healthy: boolean;
  records: number;
  checkedBytes: number;
  problems: { kind: string; message: string; offset?: number }[];
}

/** Ten messages; the commit-log offsets of each. */
async function seed(dir: string): Promise<number[]> {
  const store = await openStore(dir);
  try {
    const producer = store.createProducer({ group: 'pg' });
    const offsets: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await producer.send({ topic: 't', body: `message number ${i}`, keys: `k${i}` });
      offsets.push(r.commitLogOffset);
    }
    return offsets;
  } finally {
    await store.close();
  }
}

describe('pocketmq verify', () => {
  it('a healthy store: exit code 0, every record checked, no progress bar when piped',
    async () => {
      const dir = tmp.make();
      await seed(dir);
      const run = await runCli(['verify', '--dir', dir, '--json']);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const report = JSON.parse(run.stdout) as Report;
      expect(report).toMatchObject({ healthy: true, records: 10, problems: [] });
      expect(report.checkedBytes).toBeGreaterThan(0);
      const human = await runCli(['verify', '--dir', dir]);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(new RegExp('^checked 10 records, [\\d.]+ (B|KiB) of commit ' +
        'log, \\d+ queues?, \\d+ index entr(y|ies)\nhealthy\n$'));
      expect(human.stderr).toBe('');
    });

  it('finds a record changed on disk: exit code 1 and the problem with its offset', async () => {
    const dir = tmp.make();
    const offsets = await seed(dir);
    const bad = offsets[4]!;
    // The first body byte (record header is 64 bytes, docs/format.md): the checksum fails.
    const segment = path.join(dir, 'commitlog', '0'.repeat(20));
    const fd = fs.openSync(segment, 'r+');
    try {
      const byte = Buffer.alloc(1);
      fs.readSync(fd, byte, 0, 1, bad + 64);
      byte[0] = byte[0]! ^ 0xff;
      fs.writeSync(fd, byte, 0, 1, bad + 64);
    } finally {
      fs.closeSync(fd);
    }
    const run = await runCli(['verify', '--dir', dir, '--json']);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.healthy).toBe(false);
    expect(report.problems.some((p) => p.offset === bad)).toBe(true);
    const human = await runCli(['verify', '--dir', dir]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^KIND +OFFSET +TOPIC +QUEUE +PROBLEM\n/);
    expect(human.stdout).toContain(` ${bad} `);
    expect(human.stdout).toMatch(/\n\d+ problems? found\n$/);
  });

  it('no store: exit code 2', async () => {
    const run = await runCli(['verify', '--dir', path.join(tmp.make(), 'none')]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^pocketmq: STORE_NOT_FOUND: /);
  });
});
