/**
 * Hostile input through the public API: topic and group names that try to leave the data
 * directory, keys and property maps built to break the encoding or the limits, SQL nested past
 * reason, and data directories that are not what the store expects (unwritable, foreign files,
 * a file where a directory belongs, damaged config files). Each is refused with a coded error or
 * handled as documented; nothing outside the data directory is touched, nothing foreign deleted,
 * and the store goes on working.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MessageSelector } from '../lib/broker/filter/message-selector.js';
import { RESERVED_PROPERTIES } from '../lib/broker/message.js';
import { MessageStore, type MessageStoreOptions } from '../lib/message-store.js';
import { PocketMQError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { useTempDirs } from './support/backends.js';
import { storeInternals } from '../lib/internal.js';

const tmp = useTempDirs('pmq-hostile-');
/** Small files: a store is copied and opened dozens of times. */
const OPTIONS: MessageStoreOptions = { commitLogSegmentSize: 2 ** 20, defaultTopicQueueNums: 1,
  consumeQueueEntriesPerFile: 1024, indexHashSlots: 1024, indexMaxEntries: 4096 };
const opened: MessageStore[] = [];
const mounts: string[] = [];

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close().catch(() => undefined);
  for (const dir of mounts.splice(0)) execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
});

async function open(dir: string): Promise<MessageStore> {
  const store = await MessageStore.open(dir, OPTIONS);
  opened.push(store);
  return store;
}

/** The coded error `work` throws or rejects with. */
async function codeOf(work: () => unknown): Promise<string> {
  try {
    await work();
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    return (err as PocketMQError).code;
  }
  throw new Error('expected a coded error');
}

/** Every path under `root`, relative, with each file's bytes (to see what changed). */
function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      const rel = path.relative(root, full);
      if (entry.isDirectory()) {
        out.set(`${rel}/`, '');
        walk(full);
      } else {
        out.set(rel, fs.readFileSync(full).toString('base64'));
      }
    }
  };
  walk(root);
  return out;
}

/** A closed store holding 'hello' (key k) in T/0, and group cg's offset: made once, copied. */
let template: string | null = null;
afterAll(() => {
  if (template !== null) fs.rmSync(template, { recursive: true, force: true });
});

/** A copy of the template store in `<parent>/data`, `parent` a fresh temporary directory. */
async function seeded(): Promise<{ parent: string; dir: string }> {
  if (template === null) {
    template = fs.mkdtempSync(path.join(os.tmpdir(), 'pmq-hostile-template-'));
    const store = await open(template);
    await store.createProducer({ group: 'pg' }).send({ topic: 'T', body: 'hello', keys: ['k'] });
    const pull = store.createPullConsumer({ group: 'cg',
      consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET' });
    pull.subscribe('T', '*');
    await pull.start();
    expect((await pull.poll(1000)).length).toBe(1);
    await pull.commit();
    await store.close();
  }
  const parent = tmp.make();
  const dir = path.join(parent, 'data');
  fs.cpSync(template, dir, { recursive: true });
  return { parent, dir };
}

/** Open `dir`, find 'hello' by key and by browsing, send one more, close. */
async function expectWorks(dir: string): Promise<void> {
  const store = await open(dir);
  const found = await store.queryMessage({ topic: 'T', key: 'k' });
  expect(found.map((m) => m.body.toString())).toEqual(['hello']);
  const page = await store.browse({ topic: 'T', queueId: 0 });
  expect(page.messages[0]!.body.toString()).toBe('hello');
  const r = await store.createProducer({ group: 'pg' }).send({ topic: 'T', body: 'more' });
  expect(r.status).toBe('SEND_OK');
  await store.close();
}

const BAD_TOPICS: readonly [string, unknown][] = [
  ['../x', '../x'], ['..', '..'], ['.', '.'], ['a/b', 'a/b'], ['a\\b', 'a\\b'],
  ['absolute', '/etc/x'], ['NUL', 'a\u0000b'], ['128 characters', 'x'.repeat(128)],
  ['Cyrillic o', 't\u043epic'], ['fullwidth t', '\uff54opic'], ['dot leaders', '\u2024\u2024'],
  ['a space', 'a b'], ['a newline', 'a\nb'], ['empty', ''], ['a number', 7], ['null', null],
  ['an object', { toString: () => 'T' }],
];

describe('hostile topic and group names', () => {
  it('every call that takes a topic refuses a bad name with INVALID_TOPIC, creating nothing',
    async () => {
      const parent = tmp.make();
      const dir = path.join(parent, 'data');
      const store = await open(dir);
      const producer = store.createProducer({ group: 'pg' });
      const push = store.createPushConsumer({ group: 'cg' });
      const pull = store.createPullConsumer({ group: 'pull' });
      const before = snapshot(parent);
      for (const [label, value] of BAD_TOPICS) {
        const topic = value as string;
        const calls: [string, () => unknown][] = [
          ['send', () => producer.send({ topic, body: 'x' })],
          ['sendOneway', () => producer.sendOneway({ topic, body: 'x' })],
          ['sendBatch', () => producer.sendBatch([{ topic, body: 'x' }])],
          ['createTopic', () => store.createTopic(topic)],
          ['push subscribe', () => push.subscribe(topic, '*')],
          ['pull subscribe', () => pull.subscribe(topic, '*')],
          ['seek', () => pull.seek({ topic, queueId: 0 }, 0)],
          ['browse', () => store.browse({ topic })],
          ['queryMessage', () => store.queryMessage({ topic, key: 'k' })],
          ['searchOffset', () => store.searchOffset(topic, 0, 0)],
          ['minOffset', () => store.minOffset(topic, 0)],
          ['maxOffset', () => store.maxOffset(topic, 0)],
          ['resetConsumerOffset', () => store.resetConsumerOffset('cg2', topic, 'earliest')],
        ];
        for (const [call, work] of calls) {
          expect(`${label}: ${call}: ${await codeOf(work)}`)
            .toBe(`${label}: ${call}: INVALID_TOPIC`);
        }
      }
      expect(snapshot(parent)).toEqual(before);
      expect(store.topics()).toEqual([]);
      const r = await producer.send({ topic: 'T', body: 'ok' });
      expect((await store.viewMessage(r.msgId))!.body.toString()).toBe('ok');
    });

  it('odd but valid names (%2e%2e, %, |, 127 characters) stay inside the data directory',
    async () => {
      const parent = tmp.make();
      const dir = path.join(parent, 'data');
      let store = await open(dir);
      const names = ['%2e%2e', '%', '|', '-', '_', '%2F%2E%2E%2F', 'x'.repeat(127)];
      const producer = store.createProducer({ group: 'pg' });
      for (const topic of names) await producer.send({ topic, body: topic, keys: ['k'] });
      expect(fs.readdirSync(parent)).toEqual(['data']);
      expect(fs.readdirSync(path.join(dir, 'consumequeue')).sort()).toEqual([...names].sort());
      await store.close();
      store = await open(dir);
      for (const topic of names) {
        const found = await store.queryMessage({ topic, key: 'k' });
        expect(found.map((m) => m.body.toString())).toEqual([topic]);
      }
      // Reserved prefixes: users cannot send there.
      for (const topic of ['%RETRY%cg', '%DLQ%cg', 'SCHEDULE_TOPIC_X', 'RMQ_SYS_X']) {
        expect(await codeOf(() => store.createProducer({ group: 'pg' })
          .send({ topic, body: 'x' }))).toBe('INVALID_TOPIC');
      }
    });

  it('bad group names are refused with INVALID_OPTION wherever a group is taken', async () => {
    const parent = tmp.make();
    const store = await open(path.join(parent, 'data'));
    const before = snapshot(parent);
    const groups: unknown[] = ['../x', '..', 'a/b', 'a\\b', 'a\u0000b', 'a b', '%RETRY%g',
      'x'.repeat(121), '', 7, null];
    for (const group of groups) {
      const g = group as string;
      const calls: [string, () => unknown][] = [
        ['producer', () => store.createProducer({ group: g })],
        ['push', () => store.createPushConsumer({ group: g })],
        ['pull', () => store.createPullConsumer({ group: g })],
        ['consumerProgress', () => store.consumerProgress(g)],
        ['resetConsumerOffset', () => store.resetConsumerOffset(g, 'T', 'earliest')],
        ['resendDeadLetters', () => store.resendDeadLetters(g)],
      ];
      for (const [call, work] of calls) {
        expect(`${String(group)}: ${call}: ${await codeOf(work)}`)
          .toBe(`${String(group)}: ${call}: INVALID_OPTION`);
      }
    }
    expect(snapshot(parent)).toEqual(before);
  });
});

describe('hostile keys, properties and filters', () => {
  it('keys with /, .., NUL, unicode, 10,000 characters, or 2,000 of them come back intact',
    async () => {
      const store = await open(path.join(tmp.make(), 'data'));
      const producer = store.createProducer({ group: 'pg' });
      const many = Array.from({ length: 2000 }, (_, i) => `m${i}`);
      const odd = ['a/b', '..', '../../etc/passwd', 'a\u0000b', '\u043a\u043b\u044e\u0447',
        'zero\u200bwidth', 'k'.repeat(10_000), 'T#k'];
      for (const key of odd) await producer.send({ topic: 'T', body: key, keys: key });
      await producer.send({ topic: 'T', body: 'many', keys: many });
      await producer.send({ topic: 'T', body: 'twice', keys: ['dup', 'dup'] });
      for (const key of odd) {
        const found = await store.queryMessage({ topic: 'T', key });
        expect(found.map((m) => [m.body.toString(), m.keys])).toEqual([[key, [key]]]);
      }
      for (const key of ['m0', 'm1999']) {
        const [m] = await store.queryMessage({ topic: 'T', key });
        expect(m!.keys).toEqual(many);
      }
      expect((await store.queryMessage({ topic: 'T', key: 'dup' })).length).toBe(1);
      expect(await store.queryMessage({ topic: 'T', key: 'k' })).toEqual([]);
    });

  it('keys with whitespace are refused, never split; oversized or empty keys are refused',
    async () => {
      const store = await open(path.join(tmp.make(), 'data'));
      const producer = store.createProducer({ group: 'pg' });
      const spaced = ['a b', ' a', 'a ', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u2028b', '\u3000'];
      for (const key of spaced) {
        expect(await codeOf(() => producer.send({ topic: 'T', body: 'x', keys: [key] })))
          .toBe('INVALID_MESSAGE');
        expect(await codeOf(() => producer.send({ topic: 'T', body: 'x', keys: key })))
          .toBe('INVALID_MESSAGE');
      }
      const bad: [unknown, string][] = [[[''], 'INVALID_MESSAGE'], [[7], 'INVALID_MESSAGE'],
        [{ 0: 'a' }, 'INVALID_MESSAGE'], [['k'.repeat(limits.maxPropertiesBytes)],
          'MESSAGE_TOO_LARGE'], [Array.from({ length: 20_000 }, (_, i) => `k${i}`),
          'MESSAGE_TOO_LARGE']];
      for (const [keys, code] of bad) {
        expect(await codeOf(() => producer.send({ topic: 'T', body: 'x',
          keys: keys as string[] }))).toBe(code);
      }
      expect(await store.maxOffset('T', 0)).toBe(0);
      expect(storeInternals(store).engine.commitLogMaxOffset).toBe(0);
      await producer.send({ topic: 'T', body: 'x', keys: ['a', 'b'] });
      expect((await store.queryMessage({ topic: 'T', key: 'b' }))[0]!.keys).toEqual(['a', 'b']);
    });

  it('huge property maps are refused with MESSAGE_TOO_LARGE, storing nothing', async () => {
    const store = await open(path.join(tmp.make(), 'data'));
    const producer = store.createProducer({ group: 'pg' });
    const many = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`p${i}`, 'v']));
    const half = 'v'.repeat(limits.maxPropertiesBytes / 2);
    const maps: Record<string, string>[] = [many, { big: 'v'.repeat(2 ** 20) },
      { a: half, b: half }, { a: 'v'.repeat(0x10000) }];
    for (const properties of maps) {
      const err = await producer.send({ topic: 'T', body: 'x', properties })
        .catch((e: unknown) => e as PocketMQError);
      expect(err).toMatchObject({ code: 'MESSAGE_TOO_LARGE' });
      const { limit, actual } = err as PocketMQError;
      expect(actual!).toBeGreaterThan(limit!);
      expect(await codeOf(() => producer.sendBatch([{ topic: 'T', body: 'ok' },
        { topic: 'T', body: 'x', properties }]))).toBe('MESSAGE_TOO_LARGE');
    }
    expect([await store.maxOffset('T', 0), storeInternals(store).engine.commitLogMaxOffset])
      .toEqual([0, 0]);
    // Just under the limit is fine, and reads back whole.
    const fits = { a: 'v'.repeat(limits.maxPropertiesBytes - 3 - 1 - 64) };
    const r = await producer.send({ topic: 'T', body: 'x', properties: fits });
    expect((await store.viewMessage(r.msgId))!.properties).toEqual(fits);
  });

  it('reserved property names and bad values are refused; odd names round-trip', async () => {
    const store = await open(path.join(tmp.make(), 'data'));
    const producer = store.createProducer({ group: 'pg' });
    for (const name of RESERVED_PROPERTIES) {
      const err = await producer.send({ topic: 'T', body: 'x', properties: { [name]: 'v' } })
        .catch((e: unknown) => e as PocketMQError);
      expect(err).toMatchObject({ code: 'INVALID_MESSAGE', property: name });
    }
    const badMaps: unknown[] = [{ '': 'v' }, { ['n'.repeat(256)]: 'v' }, { a: null },
      { a: undefined }, { a: {} }, { a: NaN }, { a: Infinity }, { a: 1n }, { a: () => 'v' },
      new Map([['a', 'v']]), ['v'], new Date(0), 'a=v'];
    for (const properties of badMaps) {
      expect(await codeOf(() => producer.send({ topic: 'T', body: 'x',
        properties: properties as Record<string, string> }))).toBe('INVALID_MESSAGE');
    }
    expect(storeInternals(store).engine.commitLogMaxOffset).toBe(0);
    const odd: Record<string, string> = JSON.parse(
      '{"__proto__":"p","constructor":"c","toString":"t","a\\u0000b":"nul","\\u00e9":"e"}');
    const mixed = { ...odd, n: 1.5, yes: true };
    const r = await producer.send({ topic: 'T', body: 'x', properties: mixed });
    const got = (await store.viewMessage(r.msgId))!.properties;
    expect(Object.entries(got).sort()).toEqual(
      [...Object.entries(odd), ['n', '1.5'], ['yes', 'true']].sort());
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
  });

  it('SQL92 nested past reason is INVALID_FILTER, not a stack overflow', () => {
    const deep = ['('.repeat(8000) + 'a = 1' + ')'.repeat(8000), 'NOT '.repeat(4000) + 'a = 1',
      'a = 1' + ' AND (b = 2'.repeat(3000) + ')'.repeat(3000), 'a IN (' + '('.repeat(5000)];
    for (const sql of deep) {
      let err: unknown = null;
      try {
        MessageSelector.bySql(sql);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'INVALID_FILTER' });
    }
    expect(() => MessageSelector.bySql('('.repeat(20) + 'a = 1' + ')'.repeat(20)))
      .not.toThrow();
  });
});

/** Mount a read-only view of `source` (root only), or say why it cannot be mounted. */
function readOnlyBind(source: string): { dir: string } | { skipped: string } {
  const dir = tmp.make();
  try {
    execFileSync('mount', ['--bind', '-o', 'ro', source, dir], { stdio: 'pipe' });
  } catch (err) {
    return { skipped: (err as { stderr?: Buffer }).stderr?.toString().trim() || String(err) };
  }
  mounts.push(dir);
  return { dir };
}

describe('hostile data directories', () => {
  it('a data directory the process cannot write: a coded error, no crash', async () => {
    const { parent, dir } = await seeded();
    const target = path.join(parent, 'plain-file');
    fs.writeFileSync(target, 'not a directory');
    expect(await codeOf(() => open(target))).toBe('IO_ERROR');
    expect(await codeOf(() => open(path.join(target, 'data')))).toBe('IO_ERROR');
    expect(fs.readFileSync(target, 'utf8')).toBe('not a directory');
    if (process.getuid?.() === 0) {
      // Permission bits do not stop root: what stops root is a read-only filesystem.
      const bind = readOnlyBind(dir);
      if ('skipped' in bind) {
        console.log(`skipped: read-only bind mount as root: ${bind.skipped}`);
        return;
      }
      console.log('tested as root: a read-only bind mount of a store (not permission bits)');
      const before = snapshot(dir);
      expect(await codeOf(() => open(bind.dir))).toBe('IO_ERROR');
      const ro = await MessageStore.openReadOnly(bind.dir);
      opened.push(ro);
      expect((await ro.queryMessage({ topic: 'T', key: 'k' }))[0]!.body.toString()).toBe('hello');
      await ro.close();
      expect(snapshot(dir)).toEqual(before);
      return;
    }
    console.log('tested as a non-root user: data directories with mode 0o000 and 0o500');
    for (const mode of [0o000, 0o500]) {
      fs.chmodSync(dir, mode);
      try {
        expect(await codeOf(() => open(dir))).toBe('IO_ERROR');
      } finally {
        fs.chmodSync(dir, 0o700);
      }
    }
    await expectWorks(dir);
  });

  it('a file where a directory belongs, or the reverse: a coded error, nothing deleted',
    async () => {
      const swaps: [string, 'file' | 'dir', string][] = [
        ['commitlog', 'file', 'IO_ERROR'], ['consumequeue', 'file', 'IO_ERROR'],
        ['index', 'file', 'IO_ERROR'], ['config', 'file', 'IO_ERROR'],
        ['checkpoint', 'dir', 'IO_ERROR'], ['lock', 'dir', 'IO_ERROR'],
        ['abort', 'dir', 'IO_ERROR'], ['config/topics.json', 'dir', 'IO_ERROR'],
        ['config/consumerOffset.json', 'dir', 'IO_ERROR'],
      ];
      for (const [name, kind, code] of swaps) {
        const { dir } = await seeded();
        const target = path.join(dir, name);
        const saved = `${target}.saved`;
        if (fs.existsSync(target)) fs.renameSync(target, saved);
        if (kind === 'file') fs.writeFileSync(target, 'foreign');
        else fs.mkdirSync(path.join(target, 'inside'), { recursive: true });
        const before = snapshot(dir);
        expect(`${name}: ${await codeOf(() => open(dir))}`).toBe(`${name}: ${code}`);
        expect(snapshot(dir)).toEqual(before);
        fs.rmSync(target, { recursive: true });
        if (fs.existsSync(saved)) fs.renameSync(saved, target);
        await expectWorks(dir);
      }
    });

  it('foreign files it can tell from its own are left alone; messages round-trip', async () => {
    const { dir } = await seeded();
    const foreign = ['README', 'commitlog/notes.txt', 'commitlog/00000000000000000000.bak',
      'commitlog/0000000000001048576', 'consumequeue/bad.name/0/x', 'consumequeue/T/abc/x',
      'consumequeue/T/0/notes.txt', 'consumequeue/T/0/00000000000000000000.bak',
      'index/notes.txt', 'index/sub/x', 'config/unknown.json', 'config/sub/x', '.git/HEAD'];
    for (const name of foreign) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      fs.writeFileSync(path.join(dir, name), `foreign ${name}`);
    }
    await expectWorks(dir);
    await expectWorks(dir);
    for (const name of foreign) {
      expect(fs.readFileSync(path.join(dir, name), 'utf8')).toBe(`foreign ${name}`);
    }
  });

  it('foreign entries named like its own files: a coded error, left in place', async () => {
    const cases: [string, string][] = [
      ['commitlog/00000000000001048576/', 'IO_ERROR'],
      ['commitlog/00000000000099999999/', 'CORRUPT_DATA'],
      ['consumequeue/README', 'IO_ERROR'], ['consumequeue/T/7', 'IO_ERROR'],
    ];
    for (const [name, code] of cases) {
      const { dir } = await seeded();
      const target = path.join(dir, name);
      if (name.endsWith('/')) fs.mkdirSync(target, { recursive: true });
      else fs.writeFileSync(target, 'foreign');
      const before = snapshot(dir);
      expect(`${name}: ${await codeOf(() => open(dir))}`).toBe(`${name}: ${code}`);
      expect(snapshot(dir)).toEqual(before);
      fs.rmSync(target, { recursive: true });
      await expectWorks(dir);
    }
  });

  it('a directory named like a queue file: a coded error when the queue is used, left in place',
    async () => {
      // After a clean close a queue's files are opened on first use: that is where it fails.
      const { dir } = await seeded();
      const target = path.join(dir, 'consumequeue', 'U', '0', '00000000000000000000');
      fs.mkdirSync(target, { recursive: true });
      const before = snapshot(dir);
      const store = await open(dir);
      expect(await codeOf(() => store.stats())).toBe('IO_ERROR');
      expect(await codeOf(() => store.createProducer({ group: 'pg' })
        .send({ topic: 'U', body: 'x' }, { selector: () => 0 }))).toBe('IO_ERROR');
      const t = await store.createProducer({ group: 'pg' }).send({ topic: 'T', body: 'again' });
      expect(t.status).toBe('SEND_OK');
      await store.close();
      expect(fs.statSync(target).isDirectory()).toBe(true);
      expect(snapshot(dir).get('consumequeue/U/0/00000000000000000000/')).toBe('');
      expect([...snapshot(dir).keys()].filter((k) => k.startsWith('consumequeue/U')))
        .toEqual([...before.keys()].filter((k) => k.startsWith('consumequeue/U')));
      fs.rmSync(target, { recursive: true });
      await expectWorks(dir);
    });

  it('damaged config and checkpoint files: CORRUPT_DATA, the file left as it was', async () => {
    const framed = (data: string, checksum = '00000000', version = 1): string =>
      `{"version":${version},"checksum":"${checksum}","data":${data}}\n`;
    const damage: [string, string][] = [['', 'empty'], ['\u0000\u0001\u00ff garbage', 'bytes'],
      ['{"version":1', 'truncated'], ['null', 'null'], ['[]', 'an array'],
      [framed('{}'), 'a wrong checksum'], [framed('{}', '00000000', 2), 'version 2'],
      ['{"version":1,"checksum":"0"}', 'no data']];
    for (const file of ['config/topics.json', 'config/consumerOffset.json', 'checkpoint']) {
      for (const [bytes, what] of damage) {
        const { dir } = await seeded();
        const target = path.join(dir, file);
        const good = fs.readFileSync(target);
        fs.writeFileSync(target, bytes);
        expect(`${file} ${what}: ${await codeOf(() => open(dir))}`)
          .toBe(`${file} ${what}: CORRUPT_DATA`);
        expect(fs.readFileSync(target, 'latin1')).toBe(Buffer.from(bytes).toString('latin1'));
        fs.writeFileSync(target, good);
        await expectWorks(dir);
      }
    }
  });
});
