/**
 * A one-line progress bar on stderr for long work (verify of gigabytes, browse of millions).
 * Drawn only when stderr is a terminal: piped or redirected, it writes nothing, so logs and
 * scripts see no carriage returns. Redrawn at most every `REDRAW_MS`; the output module clears
 * it before anything goes to stdout, so table rows and the bar never share a line.
 */

/** The part of a stream the bar uses (process.stderr, or a fake in tests). */
export interface ProgressStream {
  readonly isTTY?: boolean | undefined;
  readonly columns?: number | undefined;
  write(text: string): boolean;
}

export interface ProgressOptions {
  /** How much work there is, in the unit `format` prints. */
  readonly total: number;
  /** Prints an amount: bytes as KiB/MiB, counts as they are. @default String */
  readonly format?: ((n: number) => string) | undefined;
  /** @default process.stderr */
  readonly stream?: ProgressStream | undefined;
  /** @default Date.now */
  readonly now?: (() => number) | undefined;
}

const REDRAW_MS = 100;
const DEFAULT_COLUMNS = 80;
const MIN_BAR_WIDTH = 10;
const MAX_BAR_WIDTH = 40;
/** Carriage return and erase to the end of the line. */
const ERASE = '\r\x1b[K';

/** The bar on screen, if any: at most one at a time. */
let active: ProgressBar | null = null;

/** Erase the bar (if one is drawn) before other output takes the line; it redraws later. */
export function clearProgress(): void {
  active?.clear();
}

/** Make `bar` the one on screen, finishing the one before. */
function take(bar: ProgressBar): void {
  active?.finish();
  active = bar;
}

export class ProgressBar {
  readonly enabled: boolean;
  private readonly stream: ProgressStream;
  private readonly format: (n: number) => string;
  private readonly now: () => number;
  private total: number;
  private done = 0;
  private drawn = false;
  private lastDrawMs = -Infinity;
  private finished = false;

  constructor(private readonly label: string, options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.format = options.format ?? String;
    this.now = options.now ?? Date.now;
    this.total = options.total;
    this.enabled = this.stream.isTTY === true;
    if (this.enabled) take(this);
  }

  /** Record progress: `done` of `total` (which may be revised). */
  update(done: number, total: number = this.total): void {
    this.done = done;
    this.total = total;
    if (!this.enabled || this.finished) return;
    const now = this.now();
    if (now - this.lastDrawMs < REDRAW_MS) return;
    this.lastDrawMs = now;
    this.stream.write(ERASE + this.render());
    this.drawn = true;
  }

  /** Erase the line; the next update draws it again. */
  clear(): void {
    if (!this.drawn) return;
    this.stream.write(ERASE);
    this.drawn = false;
    this.lastDrawMs = -Infinity;
  }

  /** Erase the bar for good. */
  finish(): void {
    this.clear();
    this.finished = true;
    if (active === this) active = null;
  }

  /** `label [#####-----]  45%  1.2 GiB / 2.6 GiB`, fitted to the terminal width. */
  render(): string {
    const fraction = this.total > 0 ? Math.min(1, Math.max(0, this.done / this.total)) : 0;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const amounts = `${this.format(this.done)} / ${this.format(this.total)}`;
    const columns = this.stream.columns || DEFAULT_COLUMNS; // 0: a pty with no size
    const room = columns - this.label.length - percent.length - amounts.length - 7;
    const width = Math.min(MAX_BAR_WIDTH, room);
    if (width < MIN_BAR_WIDTH) return `${this.label} ${percent}`.slice(0, columns - 1);
    const filled = Math.round(fraction * width);
    return `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${percent} ` +
      amounts;
  }
}
