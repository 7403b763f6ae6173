import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import { deflateSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as BodyZlib from '../../lib/broker/body-zlib.js';
import {
  COMPRESS_LEVEL, deflateBody, inflateBody, InflatedTooLargeError,
} from '../../lib/broker/body-zlib.js';
import { limits } from '../../lib/limits.js';

// The CommonJS exports of node:zlib: the object the module's lazy require returns, so a spy on it
// sees the calls the module makes.
const zlibExports = createRequire(import.meta.url)('node:zlib') as typeof Zlib;

/** Bytes that deflate some (a repeating text with a counter in it). */
function text(bytes: number, seed = 0): Buffer {
  const out = Buffer.alloc(bytes);
  let at = 0;
  for (let i = seed; at < bytes; i++) at += out.write(`{"id":${i},"name":"user ${i % 97}"}`, at);
  return out;
}

/** Bytes that barely deflate. */
function noise(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = 0x2545f491;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('inflateBody', () => {
  it('inflates what deflateSync made, of every size, without a zlib stream per body', () => {
    // The first body makes the kept stream, checked against inflateSync once.
    expect(inflateBody(deflateSync(Buffer.from('first'))).toString()).toBe('first');
    const spy = vi.spyOn(zlibExports, 'inflateSync');
    const scratch = 64 * 1024;
    const bodies = [
      Buffer.alloc(0), Buffer.from('x'), text(4097), Buffer.alloc(16 * 1024, 0x63), noise(20_000),
      // Around the 64 KiB scratch buffer: filled exactly, one byte over, several times over.
      text(scratch - 1), text(scratch, 1), text(scratch + 1, 2), noise(scratch),
      noise(3 * scratch + 5),
      Buffer.alloc(limits.maxBodyBytes, 0x61),
    ];
    for (let round = 0; round < 2; round++) {
      for (const body of bodies) {
        const out = inflateBody(deflateSync(body, { level: 5 }));
        expect(out.length).toBe(body.length);
        expect(out.equals(body)).toBe(true);
        // A body of its own: not a view of the scratch buffer the next body overwrites.
        expect(out.buffer.byteLength).toBeLessThanOrEqual(Math.max(body.length, 8192));
      }
    }
    expect(spy).not.toHaveBeenCalled();
  });

  it('throws zlib\'s error for bytes that do not inflate, and inflates the next body', () => {
    const good = text(30_000);
    const packed = deflateSync(good);
    const bad = [
      Buffer.from('not zlib at all'),
      packed.subarray(0, packed.length - 9), // cut short
      Buffer.concat([packed.subarray(0, 40), Buffer.alloc(40, 0xff), packed.subarray(80)]),
    ];
    const spy = vi.spyOn(zlibExports, 'inflateSync');
    for (const bytes of bad) {
      expect(() => inflateBody(bytes)).toThrow(/./);
      // The refused body's error came from inflateSync; the next body goes to a new kept
      // stream, made without checking Node's internals again.
      expect(spy).toHaveBeenCalledTimes(1);
      spy.mockClear();
      expect(inflateBody(packed).equals(good)).toBe(true);
      expect(spy).not.toHaveBeenCalled();
    }
    spy.mockRestore();
    let caught: unknown;
    try {
      inflateBody(bad[1]!);
    } catch (err) {
      caught = err;
    }
    expect((caught as { code?: string }).code).toBe('Z_BUF_ERROR');
    expect(String(caught)).toContain('unexpected end of file');
  });

  it('refuses a body that would inflate past the largest body a producer may send', () => {
    const bomb = deflateSync(Buffer.alloc(limits.maxBodyBytes + 1));
    expect(bomb.length).toBeLessThan(8192);
    expect(() => inflateBody(bomb)).toThrow(InflatedTooLargeError);
    expect(inflateBody(deflateSync(Buffer.from('after'))).toString()).toBe('after');
  });
});

describe('deflateBody', () => {
  it('gives deflateSync\'s bytes when they are smaller, without a zlib stream per body', () => {
    expect(deflateBody(text(5000))).not.toBeNull(); // makes the kept stream
    const spy = vi.spyOn(zlibExports, 'deflateSync');
    const bodies = [text(4097), Buffer.alloc(16 * 1024, 0x63), text(40_000, 3), text(64 * 1024)];
    for (let round = 0; round < 2; round++) {
      for (const body of bodies) {
        const expected = deflateSync(body, { level: COMPRESS_LEVEL });
        spy.mockClear();
        const out = deflateBody(body);
        expect(out).not.toBeNull();
        expect(out!.equals(expected)).toBe(true);
        expect(inflateBody(out!).equals(body)).toBe(true);
      }
    }
    expect(spy).not.toHaveBeenCalled();
  });

  it('gives null for a body that does not get smaller', () => {
    for (const body of [noise(5000), noise(20_000), Buffer.from('a'), Buffer.from('abc')]) {
      expect(deflateSync(body, { level: COMPRESS_LEVEL }).length)
        .toBeGreaterThanOrEqual(body.length);
      expect(deflateBody(body)).toBeNull();
    }
    // The stream is reset after a body that did not fit: the next one deflates whole.
    const body = text(10_000);
    expect(deflateBody(body)!.equals(deflateSync(body, { level: COMPRESS_LEVEL }))).toBe(true);
  });

  it('deflates a body larger than its scratch buffer with deflateSync', () => {
    const spy = vi.spyOn(zlibExports, 'deflateSync');
    const body = text(200_000);
    const out = deflateBody(body)!;
    expect(spy).toHaveBeenCalledTimes(1);
    expect(inflateBody(out).equals(body)).toBe(true);
  });
});

describe('without usable zlib internals', () => {
  /** A fresh copy of the module, whose streams are made by `fake` instead of node:zlib. */
  async function moduleWith(fake: () => object): Promise<typeof BodyZlib> {
    vi.resetModules();
    vi.spyOn(zlibExports, 'Inflate').mockImplementation(fake as never);
    vi.spyOn(zlibExports, 'Deflate').mockImplementation(fake as never);
    return import('../../lib/broker/body-zlib.js');
  }

  const fakes: [string, () => object][] = [
    ['no native handle', () => ({ on: () => {}, destroyed: false })],
    // A handle that never reports an error: inflating garbage would go unnoticed.
    ['a handle that reports nothing', () => ({
      on: () => {}, destroyed: false, _writeState: new Uint32Array(2),
      _handle: { reset: () => {}, writeSync: () => {} },
    })],
  ];

  it.each(fakes)('%s: the ...Sync functions do the work', async (_name, fake) => {
    const m = await moduleWith(fake);
    const inflateSync = vi.spyOn(zlibExports, 'inflateSync');
    const deflateSyncSpy = vi.spyOn(zlibExports, 'deflateSync');
    const body = text(20_000);
    const packed = m.deflateBody(body)!;
    expect(packed.equals(deflateSync(body, { level: m.COMPRESS_LEVEL }))).toBe(true);
    expect(m.inflateBody(packed).equals(body)).toBe(true);
    expect(() => m.inflateBody(Buffer.from('not zlib'))).toThrow(/./);
    expect(m.deflateBody(noise(5000))).toBeNull();
    expect(inflateSync).toHaveBeenCalled();
    expect(deflateSyncSpy).toHaveBeenCalled();
  });
});
