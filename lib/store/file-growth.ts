/**
 * FileGrowth: how the last file of a MappedFileQueue grows as it fills. A file starts small
 * (`initialBytes`) and grows fourfold, in whole pages, up to the queue's file size: a young file
 * on the main thread (a few page writes), a larger one off it, one growth at a time, started
 * once a quarter of the file is used so a steady writer seldom waits. A growth off the main
 * thread makes its bytes usable step by step (MappedFile.grow), and an append waiting for room
 * goes on at the next step.
 */
import { assert } from '../errors.js';
import type { MappedFile } from './mapped-file.js';

/** Allocations grow in whole pages. */
const PAGE_BYTES = 4096;
/** A growth makes a file this many times larger (fewer growths, each started well ahead). */
const GROWTH_FACTOR = 4;
/** A file grows on the main thread up to this size (each step writes at most 3/4 of it). */
const SYNC_GROWTH_BYTES = 1024 * 1024;

/** A growth under way: `step` settles when it next makes bytes usable (or ends, or fails). */
interface Growth {
  readonly file: MappedFile;
  readonly done: Promise<void>;
  step: Promise<void>;
}

export interface FileGrowthOptions {
  /** The queue's file size: no file grows past it. */
  readonly fileSizeBytes: number;
  /** The first allocation of a file made on demand. */
  readonly initialBytes: number;
  /** fdatasync each step's zeros (SYNC_FLUSH). */
  readonly syncAllocation: boolean;
  /** Told of each growth off the main thread, settled when it ends (close waits for it). */
  readonly track: (settled: Promise<void>) => void;
}

export class FileGrowth {
  /** The growth under way, if any (one at a time). */
  private growth: Growth | null = null;

  constructor(private readonly options: FileGrowthOptions) {}

  /** The file growing off the main thread and its end, or null. */
  get running(): { readonly file: MappedFile; readonly done: Promise<void> } | null {
    return this.growth;
  }

  /** The allocation a file that must take `need` bytes grows to: fourfold, in whole pages. */
  private grownSize(file: MappedFile, need: number): number {
    const size = Math.max(need, file.allocated * GROWTH_FACTOR, this.options.initialBytes);
    return Math.min(this.options.fileSizeBytes, Math.ceil(size / PAGE_BYTES) * PAGE_BYTES);
  }

  /**
   * Room for `length` more bytes in `file`: null when it has it, else a promise that settles
   * (or rejects, DISK_FULL) once a growth has made more bytes usable (its next step, a few MiB,
   * not the whole growth); call again then. A growth also starts ahead of need once a quarter
   * of the file is used (a growth off the main thread has three quarters of the file's room to
   * write its zeros in). `starts`: false once the queue is closed.
   */
  makeRoom(file: MappedFile, length: number, starts: boolean): Promise<void> | null {
    const room = file.hasRoom(length);
    const ahead = file.wrote + length > file.usable / GROWTH_FACTOR &&
      file.usable < file.sizeBytes;
    if (this.growth === null && (!room || ahead) && starts) {
      const to = this.grownSize(file, file.wrote + length);
      // A young file grows at once, on the main thread: a few page writes, no wait.
      if (to <= SYNC_GROWTH_BYTES && file.usable === file.allocated) {
        try {
          file.growSync(to);
        } catch (err) {
          // A growth ahead of need is tried again by the next append; one that is needed fails
          // as a growth off the main thread does: the append is refused (DISK_FULL), the file
          // is as it was.
          return room ? null : Promise.reject(err);
        }
      } else {
        this.start(file, to);
      }
      if (file.hasRoom(length)) return null;
    }
    if (room) return null;
    return this.growth === null ? Promise.resolve() : this.growth.step;
  }

  /** `makeRoom` on the main thread (ConsumeQueue files: a few KiB at a time). */
  makeRoomSync(file: MappedFile, length: number): void {
    if (file.hasRoom(length)) return;
    assert(this.growth?.file !== file, 'synchronous growth during a growth');
    file.growSync(this.grownSize(file, file.wrote + length));
  }

  /** Grow `file` to `to` off the main thread (also empties a distrusted tail first). */
  start(file: MappedFile, to: number): void {
    // Empty all of a distrusted tail in the same run: no new blocks are needed for it.
    const target = Math.max(to, Math.min(file.allocated, file.sizeBytes));
    // `step` is the next step's promise raced with the end (a failure rejects it, as `done`).
    let stepped = (): void => undefined;
    const nextStep = (): Promise<void> => {
      const step = Promise.race([new Promise<void>((resolve) => {
        stepped = resolve;
      }), done]);
      step.catch(() => undefined);
      return step;
    };
    const done = file.grow(target, this.options.syncAllocation, () => {
      const resolve = stepped;
      growth.step = nextStep();
      resolve();
    });
    const growth: Growth = { file, done, step: nextStep() };
    this.growth = growth;
    this.options.track(done.catch(() => undefined).finally(() => {
      if (this.growth === growth) this.growth = null;
    }));
  }

  /**
   * At a clean close: wait for the growth under way, then empty what is still distrusted of
   * `last` (a growth that failed), so the bytes past the data are zeros on disk, as the next
   * open after a clean close takes them to be. Throws when that cannot be done.
   */
  async settle(last: MappedFile | undefined): Promise<void> {
    await this.growth?.done.catch(() => undefined);
    if (last !== undefined && last.usable < Math.min(last.allocated, last.sizeBytes)) {
      last.growSync(last.allocated);
    }
  }
}
