/**
 * IndexService: the directory `<store>/index/` of IndexFiles, oldest first, indexing every
 * message's keys and uniq key (RocketMQ's IndexService). Only the newest file takes puts; when it
 * is full a new one is made and the old one kept, until retention deletes it.
 *
 * File names are 20-digit zero-padded sequence numbers (00000000000000000000, ...01, ...), given
 * in creation order, so names sort in creation order and so do the files' commit-log ranges.
 * A sequence rather than the first entry's offset: one message's keys can fill a file and spill
 * into the next, so two files may begin at the same commit-log offset.
 *
 * Invariants: files are ordered by commit-log offset (a file's endPhyOffset is at most the next
 * one's beginPhyOffset); offsets indexed never decrease; the newest file is never deleted by
 * retention. Index key = `topic + '#' + key`, as RocketMQ builds it.
 *
 * Durability follows IndexFile: a flush commits all files; after a crash each file is as its last
 * flush left it. One message's keys are committed together unless they straddle two files, so
 * recovery should `truncateFrom(endPhyOffset)` and re-dispatch the commit log from there.
 */
import path from 'node:path';
import { assert, failAssertion, CorruptDataError, PocketMQError } from '../errors.js';
import type { IoBackend } from './io/backend.js';
import { IndexFile, resolveIndexFileGeometry } from './index-file.js';
import type { IndexFileGeometry } from './index-file.js';

const FILE_NAME = /^\d{20}$/;

export type IndexServiceOptions = Partial<IndexFileGeometry>;

interface Entry {
  readonly sequence: number;
  readonly file: IndexFile;
}

export function indexFileName(sequence: number): string {
  return String(sequence).padStart(20, '0');
}

export class IndexService {
  private readonly geometry: IndexFileGeometry;
  /** Oldest first. */
  private files: Entry[] = [];
  private nextSequence = 0;
  private status: 'created' | 'opened' | 'open' | 'closed' = 'created';
  /** Files `open` found created but never committed. */
  private blank: string[] = [];
  /** Loaded after an unclean end: what the files hold may be in the page cache only. */
  private loadedUnsynced = false;

  /** `dir` is the index directory itself, `<store>/index`. */
  constructor(
    private readonly backend: IoBackend,
    readonly dir: string,
    options: IndexServiceOptions = {},
  ) {
    this.geometry = resolveIndexFileGeometry(options);
  }

  /** `open`, then `recover`. */
  async load(durable = false): Promise<void> {
    await this.open();
    this.recover(durable);
  }

  /**
   * Open every file, checking its header and changing none: a file created but never committed
   * is noted, to be deleted by `load`.
   */
  async open(): Promise<void> {
    assert(this.status === 'created', 'IndexService.open called twice');
    this.backend.mkdir(this.dir);
    const names = this.backend.readdir(this.dir).filter((name) => FILE_NAME.test(name)).sort();
    try {
      for (const name of names) {
        const sequence = Number(name);
        if (!Number.isSafeInteger(sequence)) {
          throw new CorruptDataError(`index file name ${name} is out of range`,
            { path: path.join(this.dir, name) });
        }
        const filePath = path.join(this.dir, name);
        const file = await IndexFile.openUnlessBlank(this.backend, filePath);
        if (file === null) this.blank.push(filePath);
        else this.files.push({ sequence, file });
      }
      this.checkOrder();
    } catch (err) {
      for (const { file } of this.files) file.close();
      this.files = [];
      throw err;
    }
    this.nextSequence = (this.files.at(-1)?.sequence ?? -1) + 1;
    this.status = 'opened';
  }

  /**
   * After `open`: delete the files never committed and drop what each file's last flush did not
   * commit. `durable`: the last run closed cleanly, so the files are as on disk.
   */
  recover(durable = false): void {
    assert(this.status === 'opened', 'IndexService.recover before open');
    this.loadedUnsynced = !durable;
    for (const filePath of this.blank) this.backend.unlink(filePath); // nothing to keep
    this.blank = [];
    for (const { file } of this.files) file.dropUncommitted();
    this.status = 'open';
  }

  /** Commit-log offset of the newest entry indexed, or -1 when there is none. */
  get endPhyOffset(): number {
    for (let i = this.files.length - 1; i >= 0; i--) {
      const end = this.files[i]!.file.endPhyOffset;
      if (end >= 0) return end;
    }
    return -1;
  }

  /** The index files, oldest first (for verification). */
  get indexFiles(): readonly IndexFile[] {
    return this.files.map((f) => f.file);
  }

  /** Number of index files. */
  get fileCount(): number {
    return this.files.length;
  }

  /** Index `topic#uniqKey` (if given) and `topic#key` for each distinct non-empty key. */
  buildIndex(topic: string, keys: readonly string[], uniqKey: string | undefined,
    phyOffset: number, storeTimestamp: number): void {
    this.checkOpen();
    if (phyOffset < this.endPhyOffset) {
      failAssertion(`index phyOffset ${phyOffset} is below the index's end ${this.endPhyOffset}`);
    }
    if (uniqKey !== undefined && uniqKey !== '') {
      this.put(`${topic}#${uniqKey}`, phyOffset, storeTimestamp);
    }
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (key === '' || key === uniqKey || (i > 0 && keys.indexOf(key) < i)) continue;
      this.put(`${topic}#${key}`, phyOffset, storeTimestamp);
    }
  }

  /**
   * Commit-log offsets of messages of `topic` indexed under `key` (a key or a uniq key) whose
   * store time may lie in [beginMs, endMs], newest first across files, at most `maxNum`. An offset
   * may belong to another key of the same hash, or lie up to 999 ms outside the range: the caller
   * checks the message it reads.
   */
  queryOffsets(topic: string, key: string, maxNum: number, beginMs: number,
    endMs: number): number[] {
    this.checkOpen();
    assert(Number.isSafeInteger(maxNum) && maxNum >= 0, `bad maxNum ${maxNum}`);
    const indexKey = `${topic}#${key}`;
    let out: number[] = [];
    for (let i = this.files.length - 1; i >= 0 && out.length < maxNum; i--) {
      out = out.concat(this.files[i]!.file.query(indexKey, beginMs, endMs, maxNum - out.length));
    }
    return out;
  }

  /**
   * Forget every entry with phyOffset >= `phyOffset`: delete the files that begin there or later
   * (and empty ones at the end), and truncate the file that straddles it. Afterwards the directory
   * is the one a run that never indexed those offsets would have made.
   *
   * After an unclean end the straddling file is synced and committed by the next flush even when
   * nothing changes here: its header may be one a run which crashed or failed to open wrote when
   * it cut the file, in the page cache only, over a header on disk that still counts the dropped
   * entries (a power cut would bring them back once the checkpoint has moved past them).
   */
  truncateFrom(phyOffset: number): void {
    this.checkOpen();
    for (let last = this.files.at(-1); last !== undefined; last = this.files.at(-1)) {
      const { file } = last;
      if (!file.isEmpty() && file.beginPhyOffset < phyOffset) {
        file.truncateFrom(phyOffset);
        if (this.loadedUnsynced) file.commitOnNextFlush();
        return;
      }
      this.files.pop();
      this.removeFile(last);
      this.nextSequence = last.sequence;
    }
  }

  /**
   * Retention: delete the oldest files whose entries all lie below `minPhyOffset`, never the
   * newest file. Returns how many were deleted.
   */
  deleteFilesBefore(minPhyOffset: number): number {
    this.checkOpen();
    let deleted = 0;
    for (let first = this.files[0]; first !== undefined && this.files.length > 1;
      first = this.files[0]) {
      if (first.file.endPhyOffset >= minPhyOffset) break;
      this.files.shift();
      this.removeFile(first);
      deleted++;
    }
    return deleted;
  }

  /** Make every entry so far durable (files with nothing new do no I/O). */
  async flush(): Promise<void> {
    this.checkOpen();
    await Promise.all(this.files.map(({ file }) => file.flush()));
  }

  /** Close every file (writing headers without a sync: await `flush` first); idempotent. */
  close(): void {
    if (this.status === 'closed') return;
    this.status = 'closed';
    for (const { file } of this.files) file.close();
    this.files = [];
  }

  /**
   * Create the next file now if the files cannot take `entries` more, so that a full disk
   * refuses an append before its record is in the commit log, not while it is indexed. (An
   * append with more keys than a whole file holds may still need another file then.)
   */
  reserve(entries: number): void {
    this.checkOpen();
    const max = this.geometry.maxIndexCount;
    const last = this.files.at(-1)?.file;
    const before = last?.isEmpty() === true ? this.files.at(-2)?.file : undefined;
    const free = (last === undefined ? 0 : max - last.indexCount) +
      (before === undefined ? 0 : max - before.indexCount);
    if (free < Math.min(entries, max)) this.addFile();
  }

  private put(key: string, phyOffset: number, storeTimestamp: number): void {
    const last = this.files.at(-1)?.file;
    // A file reserved ahead stays empty until the one before it is full: files split where
    // they would without the reservation (recovery re-indexes without reserving).
    const before = last?.isEmpty() === true ? this.files.at(-2)?.file : undefined;
    if (before !== undefined && before.put(key, phyOffset, storeTimestamp)) return;
    if (last !== undefined && last.put(key, phyOffset, storeTimestamp)) return;
    const file = this.addFile();
    assert(file.put(key, phyOffset, storeTimestamp), 'a new index file refused its first entry');
  }

  private addFile(): IndexFile {
    const sequence = this.nextSequence;
    const file = IndexFile.create(this.backend, path.join(this.dir, indexFileName(sequence)),
      this.geometry);
    this.files.push({ sequence, file });
    this.nextSequence = sequence + 1;
    return file;
  }

  private removeFile({ file }: Entry): void {
    file.close();
    this.backend.unlink(file.path);
  }

  private checkOrder(): void {
    let end = -1;
    for (const { file } of this.files) {
      if (file.isEmpty()) continue;
      if (file.beginPhyOffset < end) {
        throw new CorruptDataError(`index file ${file.path} begins at ${file.beginPhyOffset}, ` +
          `before the previous file's end ${end}`,
          { path: file.path, offset: file.beginPhyOffset });
      }
      end = file.endPhyOffset;
    }
  }

  private checkOpen(): void {
    if (this.status !== 'open') {
      throw new PocketMQError('STORE_CLOSED', `index service ${this.dir} is ${this.status}`,
        { path: this.dir });
    }
  }
}
