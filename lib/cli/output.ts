/**
 * Everything the command prints goes through here: aligned tables with units for people, one
 * JSON document for machines (`--json`: stdout then holds only JSON), and errors on stderr.
 * lib/ never calls `console`: this module writes to the streams itself, waits
 * for stdout to drain (a browse of millions stays in bounded memory), and clears the progress
 * bar before a line goes to stdout.
 */
import { clearProgress } from './progress.js';

export type Align = 'left' | 'right';

export interface Column {
  readonly header: string;
  /** @default 'left' */
  readonly align?: Align | undefined;
}

const KIB = 1024;
const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** `512 B`, `1.5 KiB`, `12.3 MiB`, `1.02 GiB`: binary units, three significant digits. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const sign = bytes < 0 ? '-' : '';
  let n = Math.abs(bytes);
  if (n < KIB) return `${sign}${n} B`;
  let unit = 0;
  n /= KIB;
  while (n >= KIB && unit < BYTE_UNITS.length - 1) {
    n /= KIB;
    unit += 1;
  }
  const digits = n >= 100 ? 0 : n >= 10 ? 1 : 2;
  return `${sign}${n.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** `850 µs`, `12 ms`, `1.25 s`, `3m 20s`, `2h 05m`, `3d 4h`. */
export function formatDurationMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDurationMs(-ms)}`;
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1).replace(/\.0$/, '') : Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const totalSeconds = Math.round(s);
  const minutes = Math.floor(totalSeconds / 60);
  if (minutes < 60) return `${minutes}m ${String(totalSeconds % 60).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h ${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/** A time in ms since the epoch as ISO 8601 (UTC); 0 or less is "never" and prints `-`. */
export function formatTime(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '-';
  return new Date(ms).toISOString();
}

/** Display width of a string (code points; good enough for the text we print). */
function width(text: string): number {
  return [...text].length;
}

function pad(text: string, size: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, size - width(text)));
  return align === 'right' ? fill + text : text + fill;
}

/** Columns two spaces apart, each as wide as its widest cell; headers in capitals. */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]):
  string {
  const widths = columns.map((c, i) =>
    rows.reduce((w, row) => Math.max(w, width(row[i] ?? '')), width(c.header)));
  const line = (cells: readonly string[]): string => columns
    .map((c, i) => pad(cells[i] ?? '', widths[i] ?? 0, c.align ?? 'left'))
    .join('  ').trimEnd();
  return [line(columns.map((c) => c.header.toUpperCase())), ...rows.map(line)].join('\n') + '\n';
}

/** `label  value` rows, labels padded to one width, indented by `indent`. */
export function renderPairs(pairs: readonly (readonly [string, string])[], indent = ''): string {
  const labelWidth = pairs.reduce((w, [label]) => Math.max(w, width(label)), 0);
  return pairs.map(([label, value]) =>
    `${indent}${pad(label, labelWidth, 'left')}  ${value}`.trimEnd()).join('\n') + '\n';
}

/** `storeSizeBytes` -> `store size bytes`. */
export function words(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase();
}

/** A label for a figure: its words without the unit its value carries (`p99Us` -> `p99`). */
export function label(key: string): string {
  const text = words(key);
  return text.replace(/ (bytes|ms|us)$/, '') || text;
}

/**
 * A value named `key` with its unit, by the key's last word (units come last in
 * names): `...Bytes` a size, `...Ms` / `...Us` a duration, `...Timestamp` / `...AtMs` a time,
 * `...Ratio` a percentage.
 */
export function formatByKey(key: string, value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number') {
    if (/(Timestamp|AtMs|TimeMs)$/.test(key)) return formatTime(value);
    if (/(^b|B)ytes$/.test(key)) return formatBytes(value);
    if (/(^m|M)s$/.test(key)) return formatDurationMs(value);
    if (/(^u|U)s$/.test(key)) return formatDurationMs(value / 1000);
    if (/Ratio$/.test(key)) return `${(value * 100).toFixed(1)}%`;
    return Number.isInteger(value) ? String(value) : value.toFixed(2);
  }
  if (typeof value === 'string' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map((v) => formatByKey('', v)).join(', ');
  return JSON.stringify(value);
}

/** Whether `key` holds a number printed right-aligned in a table. */
export function isNumericColumn(key: string, sample: unknown): boolean {
  return typeof sample === 'number' && !/(Timestamp|AtMs|TimeMs)$/.test(key);
}

/**
 * Write to stdout, waiting while its buffer is full. On a terminal the progress bar's line is
 * erased first (it is redrawn below); redirected, the bar stays where it is.
 */
export function writeOut(text: string): Promise<void> {
  if (process.stdout.isTTY) clearProgress();
  if (process.stdout.write(text)) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

/** Write to stderr (messages for people: errors, notes). */
export function writeErr(text: string): void {
  clearProgress();
  process.stderr.write(text);
}

/** The one JSON document of `--json`, pretty-printed. */
export function writeJson(value: unknown): Promise<void> {
  return writeOut(`${JSON.stringify(value, null, 2)}\n`);
}

/** One line of NDJSON (`tail --json`). */
export function writeJsonLine(value: unknown): Promise<void> {
  return writeOut(`${JSON.stringify(value)}\n`);
}

/**
 * `head` closing the pipe early is not an error: end quietly (exit 0 as `cat` would be
 * killed by SIGPIPE) instead of an unhandled EPIPE.
 */
export function exitQuietlyOnBrokenPipe(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

/**
 * A table printed as it goes (browse of millions, tail): the column widths are fixed by the
 * first rows it is given (at least the headers), later left-aligned cells that do not fit are
 * cut with `…`, numbers are never cut.
 */
export class StreamingTable {
  private widths: number[] | null = null;

  constructor(private readonly columns: readonly Column[]) {}

  /** The lines for `rows` (the header first, on the first call with rows). */
  render(rows: readonly (readonly string[])[]): string {
    if (rows.length === 0) return '';
    let head = '';
    if (this.widths === null) {
      this.widths = this.columns.map((c, i) =>
        rows.reduce((w, row) => Math.max(w, width(row[i] ?? '')), width(c.header)));
      head = this.line(this.columns.map((c) => c.header.toUpperCase()));
    }
    return head + rows.map((row) => this.line(row)).join('');
  }

  private line(cells: readonly string[]): string {
    return this.columns.map((c, i) => {
      const size = this.widths?.[i] ?? 0;
      const align = c.align ?? 'left';
      let cell = cells[i] ?? '';
      const last = i === this.columns.length - 1;
      if (!last && align === 'left' && width(cell) > size) {
        cell = `${[...cell].slice(0, Math.max(0, size - 1)).join('')}…`;
      }
      return pad(cell, size, align);
    }).join('  ').trimEnd() + '\n';
  }
}

/** `1 message`, `2 messages`, `3 index entries`. */
export function plural(n: number, word: string): string {
  if (n === 1) return `1 ${word}`;
  return `${n} ${word.endsWith('y') ? `${word.slice(0, -1)}ies` : `${word}s`}`;
}
