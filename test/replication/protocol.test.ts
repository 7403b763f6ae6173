/**
 * The replication wire protocol (lib/replication/protocol.ts): every message round-trips, and
 * the decoder refuses what the protocol does not allow, naming it, before holding the payload.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeAck, decodeConfig, decodeData, decodeHello, decodeProbe, decodeProbeResult,
  decodeRefused, decodeWelcome, encodeAck, encodeConfig, encodeData, encodeFrame, encodeHello,
  encodeProbe, encodeProbeResult, encodeRefused, encodeWelcome, FrameDecoder, FrameType,
  Outcome, type Frame,
} from '../../lib/replication/protocol.js';
import { errorOf } from '../support/errors.js';

function one(bytes: Buffer, maxLength = 1 << 20): Frame {
  const decoder = new FrameDecoder(maxLength);
  decoder.push(bytes);
  const frame = decoder.next();
  expect(frame).not.toBeNull();
  expect(decoder.next()).toBeNull();
  return frame!;
}

describe('replication protocol', () => {
  it('round-trips every message', () => {
    const hello = { segmentSize: 65536, minOffset: 0, maxOffset: 2 ** 40 + 3,
      last: { offset: 2 ** 40, checksum: 0xfedcba98, size: 3 }, token: 'sécret',
      epochs: [{ epoch: 1, start: 0 }, { epoch: 4, start: 2 ** 40 }] };
    expect(decodeHello(one(encodeHello(hello)).payload)).toEqual(hello);
    expect(decodeHello(one(encodeHello({ ...hello, last: null, token: '' })).payload))
      .toEqual({ ...hello, last: null, token: '' });
    const welcome = { outcome: Outcome.CUT, masterMin: 65536, masterMax: 2 ** 50, start: 7,
      epochs: [] };
    expect(decodeWelcome(one(encodeWelcome(welcome)).payload)).toEqual(welcome);
    const streaming = { ...welcome, outcome: Outcome.STREAM, epochs: hello.epochs };
    expect(decodeWelcome(one(encodeWelcome(streaming)).payload)).toEqual(streaming);
    expect(decodeRefused(one(encodeRefused('authentication failed')).payload))
      .toBe('authentication failed');
    const data = one(Buffer.concat(encodeData(2 ** 33, 2 ** 34, Buffer.from('frames'))));
    expect(data.type).toBe(FrameType.DATA);
    expect(decodeData(data.payload)).toEqual({ offset: 2 ** 33, masterMax: 2 ** 34,
      frames: Buffer.from('frames') });
    expect(decodeAck(one(encodeAck(12345)).payload)).toBe(12345);
    const files = [{ name: 'topics.json', bytes: Buffer.from('{}') },
      { name: 'consumerOffset.json', bytes: Buffer.alloc(0) }];
    expect(decodeConfig(one(encodeConfig(files)).payload)).toEqual(files);
    const refs = [{ offset: 0, checksum: 1, size: 70 }, { offset: 70, checksum: 2, size: 80 }];
    expect(decodeProbe(one(encodeProbe(refs)).payload)).toEqual(refs);
    expect(decodeProbeResult(one(encodeProbeResult(1)).payload)).toBe(1);
    expect(one(encodeFrame(FrameType.CONFIG_REQUEST)).payload.length).toBe(0);
  });

  it('hands out frames split byte by byte, and several in one chunk', () => {
    const stream = Buffer.concat([encodeAck(1), encodeAck(2), encodeAck(3)]);
    const decoder = new FrameDecoder();
    const got: number[] = [];
    for (const byte of stream.subarray(0, 20)) {
      decoder.push(Buffer.of(byte));
      for (let f = decoder.next(); f !== null; f = decoder.next()) got.push(decodeAck(f.payload));
    }
    decoder.push(stream.subarray(20));
    for (let f = decoder.next(); f !== null; f = decoder.next()) got.push(decodeAck(f.payload));
    expect(got).toEqual([1, 2, 3]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('refuses bad headers before buffering their payload', () => {
    const frame = encodeAck(7);
    const cases: [string, (b: Buffer) => void, RegExp][] = [
      ['magic', (b) => { b[0] = 0; }, /bad frame magic/],
      ['version', (b) => { b[4] = 1; }, /version 1; this build speaks 2/],
      ['type', (b) => { b[5] = 99; }, /unknown frame type 99/],
      ['type 0', (b) => { b[5] = 0; }, /unknown frame type 0/],
      ['reserved', (b) => { b[7] = 1; }, /reserved bits/],
      ['length', (b) => { b.writeUInt32LE(2 ** 31, 8); }, /a frame of 2147483648 bytes; at most/],
    ];
    for (const [what, edit, message] of cases) {
      const bytes = Buffer.from(frame);
      edit(bytes);
      const decoder = new FrameDecoder(4096);
      decoder.push(bytes.subarray(0, 12));
      const err = errorOf(() => decoder.next());
      expect(err, what).toMatchObject({ code: 'CORRUPT_DATA' });
      expect(err.message, what).toMatch(message);
    }
  });

  it('refuses payloads that break their message', () => {
    const bad: [string, () => unknown, RegExp][] = [
      ['cut hello', () => decodeHello(Buffer.alloc(10)), /HELLO is cut short/],
      ['trailing ack', () => decodeAck(Buffer.alloc(9)), /ACK has trailing bytes/],
      ['huge offset', () => decodeAck(Buffer.from([0, 0, 0, 0, 0, 0, 0x20, 0])),
        /beyond 2\^53/],
      ['hello min > max', () => decodeHello(one(encodeHello({ segmentSize: 1, minOffset: 9,
        maxOffset: 1, last: null, token: '' })).payload), /HELLO has invalid fields/],
      ['probe order', () => decodeProbe(one(encodeProbe([{ offset: 5, checksum: 0, size: 1 },
        { offset: 5, checksum: 0, size: 1 }])).payload), /do not ascend/],
      ['empty probe', () => decodeProbe(Buffer.from([0, 0])), /PROBE of 0 records/],
      ['welcome outcome', () => decodeWelcome(Buffer.concat([Buffer.of(3), Buffer.alloc(26)])),
        /WELCOME has invalid fields/],
      ['epoch order', () => decodeWelcome(one(encodeWelcome({ outcome: 0, masterMin: 0,
        masterMax: 9, start: 0, epochs: [{ epoch: 2, start: 0 }, { epoch: 2, start: 5 }] }))
        .payload), /WELCOME: epochs do not ascend/],
      ['epoch count', () => decodeHello(Buffer.concat([one(encodeHello({ segmentSize: 1,
        minOffset: 0, maxOffset: 0, last: null, token: '' })).payload.subarray(0, -2),
      Buffer.of(0xff, 0xff)])), /HELLO: 65535 epochs/],
    ];
    for (const [what, fn, message] of bad) {
      const err = errorOf(fn);
      expect(err, what).toMatchObject({ code: 'CORRUPT_DATA' });
      expect(err.message, what).toMatch(message);
    }
  });
});
