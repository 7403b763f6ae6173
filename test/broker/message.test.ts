import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  normalizeMessage, PROPERTY_ORIGIN_MESSAGE_ID, RESERVED_PROPERTIES, toMessageExt,
  userProperties,
} from '../../lib/broker/message.js';
import {
  createMessageId, decodeMessageId, MSG_ID_HEX_DIGITS,
} from '../../lib/broker/message-id.js';
import { PocketMQError } from '../../lib/errors.js';
import type { StoredRecord } from '../../lib/store/record-decoder.js';
import { SYSFLAG_COMPRESSED } from '../../lib/store/record-codec.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    return (err as PocketMQError).code;
  }
  return 'no error';
}

function record(fields: Partial<StoredRecord>): StoredRecord {
  return {
    checksum: 0x1234abcd, size: 120, sysFlag: 0, topic: 't', queueId: 2, queueOffset: 7,
    physicalOffset: 4096, bornTimestamp: 1000, storeTimestamp: 2000, reconsumeTimes: 0,
    preparedTxOffset: 0, body: Buffer.from('body'), tags: undefined, keys: [],
    uniqKey: undefined, properties: {}, ...fields,
  };
}

describe('message ids', () => {
  it('encode the commit-log offset and checksum as 24 upper-case hex digits', () => {
    expect(MSG_ID_HEX_DIGITS).toBe(24);
    expect(createMessageId(0, 0)).toBe('0'.repeat(24));
    expect(createMessageId(0x1f, 0xab)).toBe('000000000000001F000000AB');
    expect(createMessageId(2 ** 53 - 1, -1)).toBe('001FFFFFFFFFFFFFFFFFFFFF');
    expect(createMessageId(4096, 0x1234abcd)).toBe('00000000000010001234ABCD');
  });

  it('decode back to the same offset and unsigned checksum', () => {
    for (const [offset, sum] of [[0, 0], [4096, 0x1234abcd], [2 ** 53 - 1, 0xffffffff],
      [123_456_789, 0x80000000]] as const) {
      expect(decodeMessageId(createMessageId(offset, sum))).toEqual({ offset, checksum: sum });
    }
    expect(decodeMessageId('00000000000010001234abcd'))
      .toEqual({ offset: 4096, checksum: 0x1234abcd });
  });

  it('decode anything else to null', () => {
    const bad: unknown[] = ['', 'x', '0'.repeat(23), '0'.repeat(25), `${'0'.repeat(23)}G`,
      ` ${'0'.repeat(23)}`, 'FFFFFFFFFFFFFFFF00000000', '0x0000000000001000123456',
      '-00000000000100012345678', null, undefined, 42, {}, ['0'.repeat(24)]];
    for (const id of bad) expect(decodeMessageId(id), String(id)).toBeNull();
  });
});

describe('normalizeMessage', () => {
  it('turns bodies into bytes, one key into a list and property values into strings', () => {
    const m = normalizeMessage({ topic: 't', body: 'héllo', keys: 'k', tags: 'T',
      properties: { n: 42, f: -1.5, yes: true, no: false, s: 'v', empty: '' } });
    expect(Buffer.from(m.body).toString('utf8')).toBe('héllo');
    expect(m.body.length).toBe(6);
    expect(m.keys).toEqual(['k']);
    expect(m.tags).toBe('T');
    expect(m.properties).toEqual({ n: '42', f: '-1.5', yes: 'true', no: 'false', s: 'v',
      empty: '' });
    const bytes = new Uint8Array([9, 8, 7]);
    const raw = normalizeMessage({ topic: 't', body: bytes, keys: ['a', 'b'], tags: '',
      properties: {} });
    expect([...raw.body]).toEqual([9, 8, 7]);
    expect(raw.keys).toEqual(['a', 'b']);
    expect(raw.tags).toBeUndefined();
    expect(raw.properties).toBeUndefined();
  });

  it('accepts properties made without a prototype', () => {
    const props = Object.create(null) as Record<string, string>;
    props.a = 'b';
    expect(normalizeMessage({ topic: 't', body: 'x', properties: props }).properties)
      .toEqual({ a: 'b' });
  });

  it('refuses bad fields with coded errors naming them', () => {
    const cases: [unknown, string][] = [
      [null, 'INVALID_MESSAGE'],
      [{ topic: 't', body: {} }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: '' }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', keys: ['a b'] }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', keys: 5 }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', tags: 'a||b' }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', properties: { KEYS: 'k' } }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', properties: { p: Number.NaN } }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', properties: new Map() }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', delayTimeLevel: -1 }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', deliverAt: 'soon' }, 'INVALID_MESSAGE'],
      [{ topic: 't', body: 'x', delayTimeLevel: 1, deliverAt: 1 }, 'INVALID_MESSAGE'],
    ];
    for (const [msg, code] of cases) expect(codeOf(() => normalizeMessage(msg)), code).toBe(code);
    const err = (() => {
      try {
        normalizeMessage({ topic: 't', body: 'x', properties: { p: {} as string } });
      } catch (e) {
        return e as PocketMQError;
      }
      return null;
    })();
    expect(err?.property).toBe('p');
  });
});

describe('toMessageExt', () => {
  it('maps a record, leaving reserved properties out of properties', () => {
    const m = toMessageExt(record({ tags: 'T', keys: ['a', 'b'], reconsumeTimes: 3,
      properties: { TAGS: 'T', KEYS: 'a b', UNIQ_KEY: 'u', region: 'eu', RETRY_TOPIC: 'x' } }));
    expect(m).toMatchObject({ topic: 't', tags: 'T', keys: ['a', 'b'], queueId: 2,
      queueOffset: 7, commitLogOffset: 4096, storeSize: 120, bornTimestamp: 1000,
      storeTimestamp: 2000, reconsumeTimes: 3, msgId: '00000000000010001234ABCD' });
    expect(m.properties).toEqual({ region: 'eu' });
    expect(m.body.toString()).toBe('body');
  });

  it('keeps the original id of a redelivered copy', () => {
    const m = toMessageExt(record({
      properties: { [PROPERTY_ORIGIN_MESSAGE_ID]: '000000000000000000000001', a: '1' } }));
    expect(m.msgId).toBe('000000000000000000000001');
    expect(m.properties).toEqual({ a: '1' });
  });

  it('inflates a compressed body, and reports one that does not inflate', () => {
    const body = Buffer.from('z'.repeat(10_000));
    const m = toMessageExt(record({ sysFlag: SYSFLAG_COMPRESSED, body: deflateSync(body) }));
    expect(m.body.equals(body)).toBe(true);
    const bad = record({ sysFlag: SYSFLAG_COMPRESSED, body: Buffer.from('not zlib') });
    expect(codeOf(() => toMessageExt(bad))).toBe('CORRUPT_DATA');
    expect(toMessageExt(record({ body: Buffer.from('not zlib') })).body.toString())
      .toBe('not zlib');
  });

  it('userProperties drops every reserved name', () => {
    const all: Record<string, string> = { mine: 'v' };
    for (const name of RESERVED_PROPERTIES) all[name] = 'x';
    expect(userProperties(all)).toEqual({ mine: 'v' });
  });
});
