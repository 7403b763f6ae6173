import { describe, expect, it } from 'vitest';
import {
  checkGroupName, checkTopicName, checkUserTopic, dlqTopic, GROUP_PATTERN, isSystemTopic,
  retryTopic, TOPIC_PATTERN,
} from '../../lib/broker/names.js';
import { errorOf } from '../support/errors.js';

describe('checkTopicName', () => {
  it('accepts every allowed character and lengths 1 to 127', () => {
    for (const topic of ['a', 'Orders_2024', 'a-b|c%d', 'x'.repeat(127), '%RETRY%cg']) {
      expect(checkTopicName(topic)).toBe(topic);
    }
  });

  it('refuses non-strings, empty, too long and path-like names with INVALID_TOPIC', () => {
    const bad: unknown[] = [undefined, null, 42, {}, '', 'x'.repeat(128), '../etc', 'a/b',
      'a b', 'a.b', 'ä', 'a\nb'];
    for (const topic of bad) {
      const err = errorOf(() => checkTopicName(topic));
      expect(err.code).toBe('INVALID_TOPIC');
      expect(err.message).toContain('1 to 127');
    }
  });

  it('keeps the pattern of SPEC §2', () => {
    expect(TOPIC_PATTERN.source).toBe('^[A-Za-z0-9_%|-]{1,127}$');
    expect(GROUP_PATTERN.source).toBe('^[A-Za-z0-9_-]{1,120}$');
  });
});

describe('checkUserTopic', () => {
  it('refuses each reserved prefix, naming it', () => {
    for (const prefix of ['%RETRY%', '%DLQ%', 'SCHEDULE_TOPIC_', 'RMQ_SYS_']) {
      const err = errorOf(() => checkUserTopic(`${prefix}x`));
      expect(err.code).toBe('INVALID_TOPIC');
      expect(err.message).toContain(`"${prefix}"`);
      expect(err.topic).toBe(`${prefix}x`);
    }
  });

  it('accepts ordinary topics and still checks the pattern', () => {
    expect(checkUserTopic('orders')).toBe('orders');
    expect(checkUserTopic('RETRY_orders')).toBe('RETRY_orders');
    expect(errorOf(() => checkUserTopic('a/b')).code).toBe('INVALID_TOPIC');
  });
});

describe('isSystemTopic', () => {
  it('tells reserved topics from user topics', () => {
    expect(isSystemTopic('%RETRY%cg')).toBe(true);
    expect(isSystemTopic('%DLQ%cg')).toBe(true);
    expect(isSystemTopic('SCHEDULE_TOPIC_XXXX')).toBe(true);
    expect(isSystemTopic('RMQ_SYS_TRANS_HALF_TOPIC')).toBe(true);
    expect(isSystemTopic('orders')).toBe(false);
    expect(isSystemTopic('my%RETRY%')).toBe(false);
  });
});

describe('checkGroupName', () => {
  it('accepts names of 1 to 120 allowed characters', () => {
    expect(checkGroupName('cg-1_A')).toBe('cg-1_A');
    expect(checkGroupName('g'.repeat(120))).toBe('g'.repeat(120));
  });

  it('refuses the rest with INVALID_OPTION on property group', () => {
    for (const group of [undefined, 7, '', 'g'.repeat(121), 'a%b', 'a|b', 'a/b']) {
      const err = errorOf(() => checkGroupName(group));
      expect(err.code).toBe('INVALID_OPTION');
      expect(err.property).toBe('group');
      expect(err.message).toContain('1 to 120');
    }
  });
});

describe('retryTopic and dlqTopic', () => {
  it('name the group topics, which are valid topics even for the longest group', () => {
    expect(retryTopic('cg')).toBe('%RETRY%cg');
    expect(dlqTopic('cg')).toBe('%DLQ%cg');
    const longest = 'g'.repeat(120);
    expect(checkTopicName(retryTopic(longest))).toBe(`%RETRY%${longest}`);
    expect(checkTopicName(dlqTopic(longest))).toBe(`%DLQ%${longest}`);
  });

  it('refuse an invalid group', () => {
    expect(errorOf(() => retryTopic('a/b')).code).toBe('INVALID_OPTION');
    expect(errorOf(() => dlqTopic('')).code).toBe('INVALID_OPTION');
  });
});
