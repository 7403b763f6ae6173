/**
 * The one module that touches native addons (@riaskov/mmap-io for mmap, fs-ext for flock).
 * Either may fail to load (no compiler on the user's machine, an Electron ABI mismatch): callers
 * then fall back to the plain-file backend and a pid lock file.
 */
import { createRequire } from 'node:module';

export interface MmapAddon {
  readonly PROT_READ: number;
  readonly PROT_WRITE: number;
  readonly MAP_SHARED: number;
  readonly MADV_SEQUENTIAL: number;
  readonly MADV_WILLNEED: number;
  readonly PAGESIZE: number;
  map(size: number, protection: number, flags: number, fd: number, offset?: number,
    advise?: number): Buffer;
  advise(buffer: Buffer, advise: number): void;
  sync(buffer: Buffer, offset: number, length: number, blocking: boolean): void;
}

export interface FlockAddon {
  flockSync(fd: number, flags: 'ex' | 'exnb' | 'sh' | 'shnb' | 'un'): void;
}

export interface NativeAddons {
  readonly mmap: MmapAddon | null;
  readonly flock: FlockAddon | null;
  /** Why an addon is missing, for the one log line that says so. */
  readonly problems: readonly string[];
}

type Loader = (id: string) => unknown;

let cached: NativeAddons | undefined;

/** Load both addons once; `load` is injectable so tests can simulate a failed build. */
export function loadNative(load?: Loader): NativeAddons {
  if (load === undefined && cached !== undefined) return cached;
  const req: Loader = load ?? createRequire(import.meta.url);
  const problems: string[] = [];
  const attempt = <T>(id: string): T | null => {
    try {
      return req(id) as T;
    } catch (err) {
      problems.push(`${id}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      return null;
    }
  };
  // @riaskov/mmap-io finds its binary through node-pre-gyp, which parses process.argv as its own
  // command line: an application run with `--dir <d>` (node-pre-gyp reads it as --directory)
  // sent it looking under <d>, and the store fell back to plain files. Hide the arguments.
  const argv = process.argv;
  process.argv = argv.slice(0, 2);
  let mmapModule: (MmapAddon & { default?: MmapAddon }) | null;
  try {
    mmapModule = attempt<MmapAddon & { default?: MmapAddon }>('@riaskov/mmap-io');
  } finally {
    process.argv = argv;
  }
  const result: NativeAddons = {
    mmap: mmapModule === null ? null : (mmapModule.default ?? mmapModule),
    flock: attempt<FlockAddon>('fs-ext'),
    problems,
  };
  if (load === undefined) cached = result;
  return result;
}
