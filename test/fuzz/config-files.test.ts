/**
 * Fuzzing the config readers: the JsonConfigFile framing (lib/broker/config-file.ts) and what
 * the topic table (topic-config.ts) and the consumer offsets (consumer-offsets.ts) accept inside
 * it. Random bytes, damaged files, any JSON value under a matching checksum and data nested
 * deeper than any stack load a valid table or fail with CORRUPT_DATA; a table saved loads back
 * the same, whatever its group and topic names (`__proto__` included).
 */
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonConfigFile } from '../../lib/broker/config-file.js';
import { ConsumerOffsetManager } from '../../lib/broker/consumer-offsets.js';
import { GROUP_PATTERN, TOPIC_PATTERN } from '../../lib/broker/names.js';
import { TopicConfigManager } from '../../lib/broker/topic-config.js';
import { limits } from '../../lib/limits.js';
import { checksum32 } from '../../lib/store/checksum.js';
import { ManualClock } from '../../lib/store/clock.js';
import { useTempDirs } from '../support/backends.js';
import { SimBackend } from '../support/sim-backend.js';
import { coded, codedAsync, fuzz } from './fuzz-support.js';

const tmp = useTempDirs('pmq-fuzz-');

/** A framed config file around `dataText` (canonical JSON), its checksum made to match. */
function framed(dataText: string, version: unknown = 1): Buffer {
  const sum = checksum32(Buffer.from(dataText), 0, Buffer.byteLength(dataText));
  const hex = (sum >>> 0).toString(16).padStart(8, '0');
  return Buffer.from(`{"version":${JSON.stringify(version)},"checksum":"${hex}",` +
    `"data":${dataText}}\n`);
}

const specialNames = fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty');
const topicArb = fc.oneof(fc.stringMatching(TOPIC_PATTERN), specialNames);
const groupArb = fc.oneof(fc.stringMatching(GROUP_PATTERN), specialNames);

/** Values near what each file holds, and anything else JSON can say. */
const looseTopics = fc.oneof(
  fc.record({ topics: fc.array(fc.record({
    topic: fc.oneof(topicArb, fc.string(), fc.constant(null)),
    queueNums: fc.oneof(fc.integer({ min: -2, max: limits.maxQueuesPerTopic + 2 }), fc.double(),
      fc.string(), fc.constant(null)),
  }, { requiredKeys: [] }), { maxLength: 6 }) }),
  fc.jsonValue(),
);
const looseOffsets = fc.oneof(
  fc.record({ offsets: fc.dictionary(fc.oneof(groupArb, fc.string()),
    fc.dictionary(fc.oneof(topicArb, fc.string()),
      fc.dictionary(fc.oneof(fc.nat({ max: 1030 }).map(String), fc.string()),
        fc.oneof(fc.record({ offset: fc.oneof(fc.maxSafeNat(), fc.double()),
          lastCommitMs: fc.oneof(fc.maxSafeNat(), fc.integer()) }), fc.jsonValue()),
        { maxKeys: 3 }), { maxKeys: 3 }), { maxKeys: 3 }) }),
  fc.jsonValue(),
);

/** A file as it might be found: random, damaged, or well-framed around any value. */
function fileArb(loose: fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.json().map((s) => Buffer.from(s)),
    loose.map((v) => framed(JSON.stringify(v) ?? 'null')),
    fc.tuple(loose, fc.nat(), fc.nat({ max: 255 })).map(([v, at, byte]) => {
      const file = framed(JSON.stringify(v) ?? 'null');
      file[at % file.length] = byte;
      return file;
    }),
    fc.tuple(loose, fc.nat()).map(([v, keep]) => {
      const file = framed(JSON.stringify(v) ?? 'null');
      return file.subarray(0, keep % file.length);
    }),
    fc.tuple(loose, fc.jsonValue()).map(([v, version]) =>
      framed(JSON.stringify(v) ?? 'null', version)),
  );
}

function setup(): { disk: SimBackend; configDir: string } {
  const disk = new SimBackend();
  const configDir = path.join(tmp.make(), 'config');
  disk.mkdir(configDir);
  return { disk, configDir };
}

function topicManager(disk: SimBackend, configDir: string): TopicConfigManager {
  return new TopicConfigManager({ backend: disk, configDir, defaultQueueNums: 4 });
}

function offsetManager(disk: SimBackend, configDir: string): ConsumerOffsetManager {
  return new ConsumerOffsetManager({ backend: disk, configDir, clock: new ManualClock() });
}

describe('config file fuzzing', () => {
  it('the framing: any bytes load a value or fail with CORRUPT_DATA', () => {
    const { disk, configDir } = setup();
    const file = path.join(configDir, 'sample.json');
    const config = new JsonConfigFile<unknown>({ backend: disk, path: file,
      parse: (raw) => raw, name: 'sample' });
    fc.assert(fc.property(fileArb(fc.jsonValue()), (bytes) => {
      disk.writeFile(file, bytes);
      const loaded = coded(['CORRUPT_DATA'], () => config.load());
      if (loaded.ok) expect(loaded.value).not.toBeUndefined();
    }), fuzz(0x5eed_0301, 300));
  });

  it('data nested deeper than any stack is CORRUPT_DATA', () => {
    const { disk, configDir } = setup();
    const file = path.join(configDir, 'sample.json');
    const config = new JsonConfigFile<unknown>({ backend: disk, path: file,
      parse: (raw) => raw, name: 'sample' });
    // Shallow nesting loads; 200,000 levels, once a RangeError (stack overflow), must not.
    fc.assert(fc.property(fc.oneof(fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 50_000, max: 200_000 })), fc.boolean(), (depth, objects) => {
      const [open, close] = objects ? ['{"a":', '}'] : ['[', ']'];
      disk.writeFile(file, framed(`${open.repeat(depth)}0${close.repeat(depth)}`));
      const loaded = coded(['CORRUPT_DATA'], () => config.load());
      expect(loaded.ok).toBe(depth <= 50);
    }), { ...fuzz(0x5eed_0302, 20), examples: [[200_000, false]] });
  });

  it('the topic table loads valid topics or fails with CORRUPT_DATA', () => {
    const { disk, configDir } = setup();
    fc.assert(fc.property(fileArb(looseTopics), (bytes) => {
      disk.writeFile(path.join(configDir, 'topics.json'), bytes);
      const manager = topicManager(disk, configDir);
      const loaded = coded(['CORRUPT_DATA'], () => manager.load([]));
      if (!loaded.ok) return;
      for (const { topic, queueNums } of manager.list()) {
        expect(topic).toMatch(TOPIC_PATTERN);
        expect(Number.isInteger(queueNums) && queueNums >= 1 &&
          queueNums <= limits.maxQueuesPerTopic).toBe(true);
      }
    }), fuzz(0x5eed_0303, 300));
  });

  it('the consumer offsets load valid entries or fail with CORRUPT_DATA', () => {
    const { disk, configDir } = setup();
    fc.assert(fc.property(fileArb(looseOffsets), (bytes) => {
      disk.writeFile(path.join(configDir, 'consumerOffset.json'), bytes);
      const manager = offsetManager(disk, configDir);
      const loaded = coded(['CORRUPT_DATA'], () => manager.load());
      if (!loaded.ok) return;
      for (const group of manager.groups()) {
        expect(group).toMatch(GROUP_PATTERN);
        for (const { topic, queueId, offset, lastCommitMs } of manager.offsetsOf(group)) {
          expect(topic).toMatch(TOPIC_PATTERN);
          expect(Number.isInteger(queueId) && queueId >= 0 && queueId < limits.maxQueuesPerTopic)
            .toBe(true);
          expect(Number.isSafeInteger(offset) && offset >= 0).toBe(true);
          expect(Number.isSafeInteger(lastCommitMs) && lastCommitMs >= 0).toBe(true);
        }
      }
    }), fuzz(0x5eed_0304, 300));
  });

  it('consumer offsets persisted load back the same, whatever the names', async () => {
    const { disk, configDir } = setup();
    const commitArb = fc.record({ group: groupArb, topic: topicArb,
      queueId: fc.nat({ max: limits.maxQueuesPerTopic - 1 }), offset: fc.maxSafeNat() });
    await fc.assert(fc.asyncProperty(fc.array(commitArb, { minLength: 1, maxLength: 12 }),
      async (commits) => {
        const saved = offsetManager(disk, configDir);
        for (const c of commits) saved.commit(c.group, c.topic, c.queueId, c.offset);
        await saved.persist();
        const loaded = offsetManager(disk, configDir);
        const outcome = await codedAsync([], async () => loaded.load());
        expect(outcome.ok).toBe(true);
        expect(loaded.groups()).toEqual(saved.groups());
        for (const group of saved.groups()) {
          expect(loaded.offsetsOf(group)).toEqual(saved.offsetsOf(group));
        }
      }), { ...fuzz(0x5eed_0305, 100),
      examples: [[[{ group: '__proto__', topic: 'T', queueId: 0, offset: 5 }]],
        [[{ group: 'g', topic: '__proto__', queueId: 1, offset: 7 }]]] });
  });

  it('a topic table saved loads back the same, whatever the names', async () => {
    const { disk, configDir } = setup();
    const createArb = fc.record({ topic: topicArb,
      queueNums: fc.integer({ min: 1, max: limits.maxQueuesPerTopic }) });
    await fc.assert(fc.asyncProperty(fc.array(createArb, { minLength: 1, maxLength: 12 }),
      async (creates) => {
        disk.unlink(path.join(configDir, 'topics.json')); // each run starts a new table
        const saved = topicManager(disk, configDir);
        saved.load([]);
        for (const c of creates) {
          const known = saved.get(c.topic)?.queueNums ?? 0;
          await saved.create(c.topic, Math.max(known, c.queueNums));
        }
        const loaded = topicManager(disk, configDir);
        loaded.load([]);
        expect(loaded.list()).toEqual(saved.list());
      }), fuzz(0x5eed_0306, 60));
  });
});
