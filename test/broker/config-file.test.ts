import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_FORMAT_VERSION, JsonConfigFile, MAX_CONFIG_FILE_BYTES,
} from '../../lib/broker/config-file.js';
import { checksum32 } from '../../lib/store/checksum.js';
import type { IoBackend } from '../../lib/store/io/backend.js';
import { backendCases, enospc, simCase, useTempDirs } from '../support/backends.js';
import { errorOf, rejection } from '../support/errors.js';

const tmp = useTempDirs();

interface Sample {
  readonly name: string;
  readonly count: number;
}

function parseSample(raw: unknown): Sample {
  const { name, count } = (raw ?? {}) as Record<string, unknown>;
  if (typeof name !== 'string' || !Number.isInteger(count)) throw new Error('not a sample');
  return { name, count: count as number };
}

/** The backend, counting atomic writes, the most in flight at once, and failing on request. */
function watched(inner: IoBackend): IoBackend & {
  writes: number; maxInFlight: number; failNext: boolean;
} {
  let inFlight = 0;
  const spy = Object.assign(Object.create(inner) as IoBackend, {
    writes: 0, maxInFlight: 0, failNext: false,
    async writeFileAtomicAsync(filePath: string, data: Uint8Array): Promise<void> {
      spy.writes += 1;
      if (spy.failNext) {
        spy.failNext = false;
        throw enospc(filePath);
      }
      inFlight += 1;
      spy.maxInFlight = Math.max(spy.maxInFlight, inFlight);
      try {
        await inner.writeFileAtomicAsync(filePath, data);
      } finally {
        inFlight -= 1;
      }
    },
  });
  return spy;
}

function setup(backend: IoBackend): { file: JsonConfigFile<Sample>; filePath: string } {
  const filePath = path.join(tmp.make(), 'config', 'sample.json');
  const file = new JsonConfigFile({ backend, path: filePath, parse: parseSample, name: 'sample' });
  return { file, filePath };
}

/** A framed file with a correct checksum around `data`, as a later build might write. */
function framed(version: number, data: unknown): Buffer {
  const json = JSON.stringify(data);
  const sum = checksum32(Buffer.from(json), 0, Buffer.byteLength(json));
  const hex = (sum >>> 0).toString(16).padStart(8, '0');
  return Buffer.from(`{"version":${version},"checksum":"${hex}","data":${json}}`);
}

describe.each(backendCases)('JsonConfigFile on $kind', (backendCase) => {
  it('loads null when the file is missing', () => {
    const { file } = setup(backendCase.make());
    expect(file.load()).toBeNull();
  });

  it('saves atomically into a new config directory and loads the value back', async () => {
    const backend = backendCase.make();
    const { file, filePath } = setup(backend);
    await file.save({ name: 'a', count: 1 });
    expect(backend.exists(path.dirname(filePath))).toBe(true);
    expect(file.load()).toEqual({ name: 'a', count: 1 });
    const onDisk = JSON.parse(backend.readFile(filePath)!.toString()) as Record<string, unknown>;
    expect(onDisk.version).toBe(CONFIG_FORMAT_VERSION);
    expect(onDisk.data).toEqual({ name: 'a', count: 1 });
    const again = new JsonConfigFile({ backend, path: filePath, parse: parseSample, name: 's' });
    expect(again.load()).toEqual({ name: 'a', count: 1 });
  });

  it('saveSync writes before it returns', () => {
    const { file } = setup(backendCase.make());
    file.saveSync({ name: 'sync', count: 2 });
    expect(file.load()).toEqual({ name: 'sync', count: 2 });
  });

  it('serializes saves and writes only the newest of those queued', async () => {
    const backend = watched(backendCase.make());
    const { file } = setup(backend);
    const value = { name: 'v', count: 1 };
    const saves = [1, 2, 3, 4].map((count) => file.save({ ...value, count }));
    expect(file.saving).toBe(true);
    await Promise.all(saves);
    expect(backend.writes).toBe(2);
    expect(backend.maxInFlight).toBe(1);
    expect(file.saving).toBe(false);
    expect(file.load()).toEqual({ name: 'v', count: 4 });
  });

  it('writes the value as it was when save was called', async () => {
    const { file } = setup(backendCase.make());
    const value = { name: 'x', count: 1 };
    const saved = file.save(value);
    value.count = 99;
    await saved;
    expect(file.load()).toEqual({ name: 'x', count: 1 });
  });

  it('refuses saveSync while an asynchronous save is in flight', async () => {
    const { file } = setup(backendCase.make());
    const saved = file.save({ name: 'a', count: 1 });
    expect(errorOf(() => file.saveSync({ name: 'b', count: 2 })).code).toBe('ASSERTION_FAILED');
    await saved;
    file.saveSync({ name: 'b', count: 2 });
    expect(file.load()).toEqual({ name: 'b', count: 2 });
  });

  it('rejects a failed save with a coded error and keeps the old file', async () => {
    const backend = watched(backendCase.make());
    const { file, filePath } = setup(backend);
    await file.save({ name: 'old', count: 1 });
    backend.failNext = true;
    const err = await rejection(file.save({ name: 'new', count: 2 }));
    expect(err.code).toBe('DISK_FULL');
    expect(err.path).toBe(filePath);
    expect(file.load()).toEqual({ name: 'old', count: 1 });
    await file.save({ name: 'new', count: 3 });
    expect(file.load()).toEqual({ name: 'new', count: 3 });
  });

  it('reports garbled JSON as CORRUPT_DATA naming the file', () => {
    const backend = backendCase.make();
    const { file, filePath } = setup(backend);
    backend.mkdir(path.dirname(filePath));
    backend.writeFile(filePath, Buffer.from('{"version":1,"checksum":"00'));
    const err = errorOf(() => file.load());
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.path).toBe(filePath);
    expect(err.message).toContain(filePath);
  });

  it('reports a changed digit (checksum mismatch) as CORRUPT_DATA', async () => {
    const backend = backendCase.make();
    const { file, filePath } = setup(backend);
    await file.save({ name: 'n', count: 1234 });
    const text = backend.readFile(filePath)!.toString().replace('"count":1234', '"count":1235');
    backend.writeFile(filePath, Buffer.from(text));
    const err = errorOf(() => file.load());
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.message).toContain('checksum');
  });

  it('reports an unknown format version as CORRUPT_DATA', () => {
    const backend = backendCase.make();
    const { file, filePath } = setup(backend);
    backend.mkdir(path.dirname(filePath));
    backend.writeFile(filePath, framed(2, { name: 'n', count: 1 }));
    const err = errorOf(() => file.load());
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.message).toContain('version');
    backend.writeFile(filePath, framed(1, { name: 'n', count: 1 }));
    expect(file.load()).toEqual({ name: 'n', count: 1 });
  });

  it('reports data its parse refuses as CORRUPT_DATA with the cause', () => {
    const backend = backendCase.make();
    const { file, filePath } = setup(backend);
    backend.mkdir(path.dirname(filePath));
    backend.writeFile(filePath, framed(1, { name: 7 }));
    const err = errorOf(() => file.load());
    expect(err.code).toBe('CORRUPT_DATA');
    expect(err.message).toContain('not a sample');
    expect((err.cause as Error).message).toBe('not a sample');
  });
});

describe('JsonConfigFile limits', () => {
  it('refuses to save a value larger than MAX_CONFIG_FILE_BYTES', async () => {
    const { file } = setup(simCase().make());
    const err = await rejection(file.save({ name: 'x'.repeat(MAX_CONFIG_FILE_BYTES), count: 1 }));
    expect(err.code).toBe('LIMIT_EXCEEDED');
    expect(err.limit).toBe(MAX_CONFIG_FILE_BYTES);
    expect(file.load()).toBeNull();
  });
});
