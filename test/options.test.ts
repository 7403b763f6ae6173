import { describe, expect, it } from 'vitest';
import { PocketMQError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import { ManualClock, systemClock } from '../lib/store/clock.js';
import { resolveStoreOptions, storeDefaults, type StoreOptions } from '../lib/store/options.js';
import { resolveBrokerOptions } from '../lib/broker/options.js';
import {
  checkBool, checkFunctionOrNull, checkInt, checkKnownOptions, checkMethods, checkRatio,
  intOption,
} from '../lib/validate.js';
import { SimBackend } from './support/sim-backend.js';

function rejection(options: unknown): { code: string; property: string | undefined } {
  try {
    resolveStoreOptions(options as StoreOptions);
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    const e = err as PocketMQError;
    return { code: e.code, property: e.property };
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('resolveStoreOptions', () => {
  it('resolves to the documented defaults', () => {
    const o = resolveStoreOptions();
    expect(o).toEqual({ ...storeDefaults, onRecoveryProgress: null, addonLoader: null });
    expect(o).toMatchObject({
      flushDiskType: 'ASYNC_FLUSH', syncFlushTimeoutMs: 5000, commitLogSegmentSize: 64 * 2 ** 20,
      maxMessageSize: 4 * 2 ** 20, defaultTopicQueueNums: 4, flushIntervalMs: 500,
      flushLeastPages: 4, flushThoroughIntervalMs: 10_000, flushConsumeQueueIntervalMs: 1000,
      consumeQueueEntriesPerFile: 102_400, indexHashSlots: 65_536, indexMaxEntries: 262_144,
      fileReservedTimeHours: 72, diskMaxUsedSpaceRatio: 0.75, diskFullRatio: 0.9,
      cleanResourceIntervalMs: 10_000, backend: 'auto',
    });
    expect(o.clock).toBe(systemClock);
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(storeDefaults)).toBe(true);
    expect(resolveStoreOptions({ flushIntervalMs: undefined }).flushIntervalMs).toBe(500);
  });

  it('keeps what is given', () => {
    const clock = new ManualClock();
    const backend = new SimBackend();
    const progress = (): void => undefined;
    const o = resolveStoreOptions({ flushDiskType: 'SYNC_FLUSH', clock, backend,
      onRecoveryProgress: progress, flushLeastPages: 0, fileReservedTimeHours: 0.5,
      diskFullRatio: 1 });
    expect(o).toMatchObject({ flushDiskType: 'SYNC_FLUSH', flushLeastPages: 0,
      fileReservedTimeHours: 0.5, diskFullRatio: 1 });
    expect([o.clock, o.backend, o.onRecoveryProgress]).toEqual([clock, backend, progress]);
  });

  it('lowers the default body limit for a small segment, and refuses a larger one', () => {
    expect(resolveStoreOptions({ commitLogSegmentSize: 65_536 }).maxMessageSize)
      .toBe(65_536 / 2 - 4096);
    expect(rejection({ commitLogSegmentSize: 65_536, maxMessageSize: 65_536 / 2 }))
      .toEqual({ code: 'INVALID_OPTION', property: 'maxMessageSize' });
  });

  const logger = { debug() {}, info() {}, warn() {}, error() {} };
  it.each([
    ['flushDiskType', 'SYNC'],
    ['syncFlushTimeoutMs', 0], ['syncFlushTimeoutMs', 1.5], ['syncFlushTimeoutMs', '5000'],
    ['commitLogSegmentSize', limits.minSegmentBytes - 4096],
    ['commitLogSegmentSize', limits.maxSegmentBytes + 4096],
    ['commitLogSegmentSize', 65_536 + 100],
    ['maxMessageSize', 0], ['maxMessageSize', limits.maxBodyBytes + 1],
    ['defaultTopicQueueNums', 0], ['defaultTopicQueueNums', limits.maxQueuesPerTopic + 1],
    ['flushIntervalMs', -1], ['flushLeastPages', -1], ['flushThoroughIntervalMs', NaN],
    ['flushConsumeQueueIntervalMs', 0], ['consumeQueueEntriesPerFile', 15],
    ['indexHashSlots', 1], ['indexMaxEntries', 2 ** 40],
    ['fileReservedTimeHours', -1], ['fileReservedTimeHours', NaN], ['fileReservedTimeHours', '72'],
    ['diskMaxUsedSpaceRatio', 0], ['diskMaxUsedSpaceRatio', 1.1], ['diskFullRatio', -0.5],
    ['diskFullRatio', '0.9'], ['cleanResourceIntervalMs', 0],
    ['backend', 'memory'], ['backend', null], ['backend', {}],
    ['clock', null], ['clock', 'now'], ['clock', { now: () => 0 }],
    ['logger', null], ['logger', console.log], ['logger', { ...logger, warn: 1 }],
    ['onRecoveryProgress', 'yes'], ['onRecoveryProgress', {}], ['addonLoader', 'fs-ext'],
  ])('rejects %s = %s as INVALID_OPTION naming it', (property, value) => {
    expect(rejection({ [property]: value })).toEqual({ code: 'INVALID_OPTION', property });
  });

  it('rejects an unknown option, naming it', () => {
    expect(rejection({ flushIntervalMS: 5 }))
      .toEqual({ code: 'INVALID_OPTION', property: 'flushIntervalMS' });
  });

  it('rejects options that are not an object', () => {
    expect(rejection(null).code).toBe('INVALID_OPTION');
    expect(rejection('fast').code).toBe('INVALID_OPTION');
  });
});

describe('the shared option checks (lib/validate.ts)', () => {
  it('an integer out of range names the bound it crossed and the number given', () => {
    const caught = (fn: () => unknown): PocketMQError => {
      try {
        fn();
      } catch (err) {
        return err as PocketMQError;
      }
      throw new Error('accepted');
    };
    expect(caught(() => intOption({ n: 0 }, 'n', 5, 1, 10)))
      .toMatchObject({ code: 'INVALID_OPTION', property: 'n', limit: 1, actual: 0,
        message: 'option n must be an integer in [1, 10], got 0' });
    expect(caught(() => intOption({ n: 11 }, 'n', 5, 1, 10)))
      .toMatchObject({ property: 'n', limit: 10, actual: 11 });
    const quoted = caught(() => checkInt('n', '5', 1, 10, ' (why)'));
    expect(quoted.message).toBe('option n must be an integer in [1, 10] (why), got "5"');
    expect(quoted).not.toHaveProperty('actual');
    expect(intOption({}, 'n', 5, 1, 10)).toBe(5);
  });

  it('ratios, booleans, methods and functions name the option', () => {
    expect(checkRatio('r', 1)).toBe(1);
    expect(() => checkRatio('r', 0)).toThrow(/^option r must be in \(0, 1\], got 0$/);
    expect(() => checkBool('b', 'yes')).toThrow(/^option b must be a boolean, got "yes"$/);
    expect(() => checkMethods('m', { a() {} }, ['a', 'b']))
      .toThrow(/^option m must be an object with the methods a, b$/);
    expect(checkFunctionOrNull('f', undefined)).toBeNull();
    expect(() => checkFunctionOrNull('f', 1)).toThrow(/^option f must be a function$/);
    expect(() => checkKnownOptions({ x: 1 }, ['y'], 'a thing'))
      .toThrow(/^option x is not a thing$/);
  });
});

describe('resolveBrokerOptions', () => {
  it('resolves to the documented defaults', () => {
    expect(resolveBrokerOptions({})).toMatchObject({ trace: false,
      persistConsumerOffsetIntervalMs: 5000, timerMaxDelayMs: 30 * 86_400_000,
      transactionTimeoutMs: 6000, transactionCheckIntervalMs: 5000, transactionCheckMax: 15 });
    expect(resolveBrokerOptions({}).delayLevels).toHaveLength(18);
    expect(resolveBrokerOptions({ messageDelayLevel: '1s 2m' }).delayLevels)
      .toEqual([1000, 120_000]);
  });

  it.each([
    ['trace', 'yes'], ['persistConsumerOffsetIntervalMs', 0], ['messageDelayLevel', '1x'],
    ['timerMaxDelayMs', limits.maxTimerDelayMs + 1], ['transactionTimeoutMs', -1],
    ['transactionCheckIntervalMs', 0], ['transactionCheckMax', limits.maxTransactionCheckMax + 1],
  ])('rejects %s = %s as INVALID_OPTION naming it', (property, value) => {
    expect(() => resolveBrokerOptions({ [property]: value }))
      .toThrow(expect.objectContaining({ code: 'INVALID_OPTION', property }));
  });
});
