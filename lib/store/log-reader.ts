/**
 * LogReader: the commit log's records read back by offset, each checked (frame and checksum)
 * before it is handed out: one record (`read`, `readWithoutMapping`), a cursor placed on one
 * (`seek`), or every record from an offset (`iterate`). CommitLog owns the writing side and hands
 * these out as its own.
 */
import type { MappedFile } from './mapped-file.js';
import type { MappedFileQueue } from './mapped-file-queue.js';
import type { RecordCursor } from './record-cursor.js';
import { dataView } from './record-codec.js';
import {
  decodeRecord, FRAME_BLANK, FRAME_EMPTY, frameKind, type StoredRecord,
} from './record-decoder.js';

/**
 * Where `locate` found a record's checked frame: its bytes and where it starts in them. One per
 * reader, filled again by each call, whose callers use it at once: a read makes no object for
 * it (see StoredMessage in broker/message.ts for why the read path avoids object literals).
 */
class Located {
  buf: Buffer = Buffer.alloc(0);
  dv: DataView = dataView(this.buf);
  at = 0;
  mapped = false;
}

export class LogReader {
  private readonly located = new Located();

  constructor(private readonly queue: MappedFileQueue) {}

  /**
   * The record at `offset`, checked (frame and checksum), or null when no valid record is there.
   * With `zeroCopy` the body is a view of the segment: valid while the segment exists.
   */
  read(offset: number, zeroCopy = false): StoredRecord | null {
    const found = this.locate(offset, true);
    if (found === null) return null;
    return decodeRecord(found.buf, found.dv, found.at, !zeroCopy || !found.mapped);
  }

  /**
   * `read` (a copy) that maps no segment: one not mapped yet is read from its file. For a record
   * read from a segment nothing else reads, as retention dates a segment by the next one's first
   * record: mapping a segment takes its whole length of the process's external memory (64 MiB),
   * which in a store's open was a full garbage collection.
   */
  readWithoutMapping(offset: number): StoredRecord | null {
    const found = this.locate(offset, false);
    if (found === null) return null;
    return decodeRecord(found.buf, found.dv, found.at, true);
  }

  /**
   * Position `cursor` on the checked record at `offset` (in the mapping where there is one, else
   * in a copy); false when no valid record is there.
   */
  seek(offset: number, cursor: RecordCursor): boolean {
    const found = this.locate(offset, true);
    if (found === null) return false;
    cursor.moveTo(found.buf, found.dv, found.at);
    return true;
  }

  /**
   * Walk records from `offset` (a record start) to the end of the log, skipping blank markers;
   * records appended while the walk goes on are walked too.
   */
  *iterate(offset: number, zeroCopy = false): Generator<StoredRecord> {
    let at = Math.max(offset, this.queue.minOffset);
    while (at < this.queue.wroteWhere) {
      const file = this.queue.findByOffset(at);
      if (file === undefined) return;
      const { buf, dv } = file.scanBuffer();
      const copy = !zeroCopy || !file.mapped;
      for (;;) {
        const kind = frameKind(buf, dv, at - file.fileFromOffset, file.readable, at);
        if (kind === FRAME_BLANK) break;
        if (kind <= FRAME_EMPTY) return;
        yield decodeRecord(buf, dv, at - file.fileFromOffset, copy);
        at += kind;
      }
      at = file.fileFromOffset + file.sizeBytes;
    }
  }

  /**
   * The checked frame of the record at `offset` (in `located`, reused), or null. `map` false: a
   * segment not mapped yet is read, not mapped.
   */
  private locate(offset: number, map: boolean): Located | null {
    const file = this.queue.findByOffset(offset);
    if (file === undefined || offset - file.fileFromOffset >= file.readable) return null;
    const at = offset - file.fileFromOffset;
    const mapped = map ? file.mapped : file.mappedNow;
    const { buf, dv } = mapped ? file.scanBuffer() : readWindow(file, at, map);
    // The read's own publish of the staged window failed: the record never reached the file.
    if (at >= file.readable) return null;
    const base = mapped ? at : 0;
    const end = mapped ? file.readable : buf.length;
    if (frameKind(buf, dv, base, end, offset) <= FRAME_EMPTY) return null;
    const found = this.located;
    found.buf = buf;
    found.dv = dv;
    found.at = base;
    found.mapped = mapped;
    return found;
  }
}

/** The record's bytes at `at` in a file read without its mapping (or with no mapping at all). */
function readWindow(file: MappedFile, at: number, map: boolean): { buf: Buffer; dv: DataView } {
  const head = file.view(at, Math.min(8, file.readable - at), map);
  const size = head.length >= 8 ? head.readUInt32LE(4) : 0;
  const length = Math.max(0, Math.min(size, file.readable - at));
  const buf = file.view(at, length, map);
  return { buf, dv: dataView(buf) };
}
