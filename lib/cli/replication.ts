/**
 * `replication status`: where replication stands, from a data directory (the status its store
 * writes about every second while it runs, `<dir>/replication/status.json`) or from a running
 * master over its replication port (`--master host:port`, with `--token` when it has one):
 * the role, the log's offsets, and per follower its acknowledged offset and lag, or a
 * follower's master and how far behind it is.
 *
 * `promote`: a stopped follower's directory becomes a master's (the running store's
 * `promote()` does the same while it runs): the next open with brokerRole SLAVE does not
 * follow, and takes writes after the copied log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { PocketMQError } from '../errors.js';
import { MessageStore, storeInternals } from '../message-store.js';
import { parseHostPort } from '../replication/options.js';
import {
  readPromoted, readStatus, writePromoted, type FileReader,
} from '../replication/state.js';
import { requestMasterStatus } from '../replication/status-client.js';
import { CliError, DIR_ENV, EXIT } from './context.js';
import {
  formatBytes, formatTime, renderPairs, renderTable, writeJson, writeOut,
} from './output.js';

interface StatusOptions {
  readonly dir?: string | undefined;
  readonly master?: string | undefined;
  readonly token?: string | undefined;
  readonly json?: boolean | undefined;
}

/** The environment variable `--token` defaults to. */
const TOKEN_ENV = 'POCKETMQ_HA_TOKEN';

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter((v): v is Record<string, unknown> =>
    v !== null && typeof v === 'object') : [];
}

async function status(dirArg: string | undefined, options: StatusOptions): Promise<void> {
  // $POCKETMQ_DIR does not conflict with --master; a directory given with it does.
  const dir = dirArg ?? (options.master === undefined ? options.dir : undefined);
  if ((dir === undefined) === (options.master === undefined)) {
    throw new CliError('give a data directory or --master host:port (one of them)', EXIT.USAGE);
  }
  let s: Record<string, unknown>;
  if (options.master !== undefined) {
    s = await requestMasterStatus(parseHostPort(options.master, '--master'),
      options.token ?? null);
  } else {
    s = readDirStatus(dir!);
  }
  if (options.json === true) {
    await writeJson(s);
    return;
  }
  await writeOut(renderStatus(s));
}

function readDirStatus(dir: string): Record<string, unknown> {
  if (!fs.existsSync(path.join(dir, 'commitlog'))) {
    throw new PocketMQError('STORE_NOT_FOUND', `${path.resolve(dir)} holds no pocketmq store`,
      { path: path.resolve(dir) });
  }
  const found = readStatus(files, dir);
  if (found === null) {
    throw new CliError(`${dir} has no replication status: its store never ran with a ` +
      'brokerRole', EXIT.FAILED);
  }
  return found;
}

/** The file reads readStatus needs, on the real filesystem. */
const files: FileReader = {
  readFile(file: string): Buffer | null {
    try {
      return fs.readFileSync(file);
    } catch {
      return null;
    }
  },
};

/** A status written by a process that is gone (killed) says so. */
function alive(pid: unknown): boolean {
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The human view of a status object. */
export function renderStatus(s: Record<string, unknown>): string {
  const pairs: [string, string][] = [
    ['role', `${String(s.role)} (${String(s.brokerRole)})`],
    ['log', `${num(s.minOffset)} to ${num(s.maxOffset)}`],
  ];
  if (s.haPort !== null && s.haPort !== undefined) pairs.push(['ha port', String(s.haPort)]);
  if (s.running !== undefined) {
    const at = formatTime(num(s.updatedAt));
    pairs.push(['store', s.running !== true ? `stopped at ${at}`
      : alive(s.pid) ? `running (pid ${String(s.pid)}), status as of ${at}`
        : `ended without closing (pid ${String(s.pid)} is gone), status as of ${at}`]);
  }
  const master = s.master as Record<string, unknown> | null | undefined;
  if (master !== null && master !== undefined) {
    const behind = master.masterOffset === null ? 'not heard from yet'
      : `${formatBytes(Math.max(0, num(master.masterOffset) - num(master.offset)))} behind`;
    pairs.push(['master', `${String(master.masterAddress)} ` +
      `(${master.connected === true ? 'connected' : 'not connected'}), ${behind}`]);
  }
  let text = renderPairs(pairs);
  const followers = records(s.followers);
  if (s.role === 'master') {
    text += followers.length === 0 ? 'followers: none connected\n'
      : `followers:\n${renderTable([{ header: 'address' },
        { header: 'acked offset', align: 'right' }, { header: 'lag', align: 'right' },
        { header: 'connected since' }], followers.map((f) => [String(f.address),
        String(num(f.ackOffset)), formatBytes(num(f.lagBytes)), formatTime(num(f.connectedAt))]))
        .replace(/^(?=.)/gm, '  ')}`;
  }
  return text;
}

async function promote(dirArg: string | undefined, options: { dir?: string; json?: boolean }):
  Promise<void> {
  const dir = dirArg ?? options.dir;
  if (dir === undefined) throw new CliError('give the follower\'s data directory', EXIT.USAGE);
  const last = readDirStatus(dir);
  const already = readPromoted(files, dir);
  if (already !== null || last.brokerRole !== 'SLAVE') {
    throw new CliError(already !== null ? `${dir} was promoted already (at ` +
      `${formatTime(already.promotedAt)})` : `${dir} is not a follower's: its store ran as ` +
      `${String(last.brokerRole)}`, EXIT.USAGE);
  }
  let store: MessageStore;
  try {
    store = await MessageStore.open(dir);
  } catch (err) {
    if (!(err instanceof PocketMQError && err.code === 'STORE_LOCKED')) throw err;
    throw new CliError(`the follower in ${dir} is running: call promote() in it, or stop it ` +
      'first', EXIT.LOCKED);
  }
  let offset: number;
  try {
    const engine = storeInternals(store).engine;
    offset = engine.commitLogMaxOffset;
    writePromoted(engine.backend, dir, { promotedAt: Date.now(), offset });
  } finally {
    await store.close();
  }
  if (options.json === true) {
    await writeJson({ promoted: true, offset });
    return;
  }
  await writeOut(`promoted ${dir}: it opens as a master and takes writes from offset ${offset}\n`);
}

export function registerReplicationCommands(program: Command): void {
  const replication = program.command('replication')
    .description('master/slave replication: status');
  replication.command('status')
    .description('role, log offsets, followers and their lag (or the master and the lag)')
    .argument('[dir]', 'the data directory (or --dir, $POCKETMQ_DIR)')
    .addOption(new Option('-d, --dir <dataDir>', 'the store\'s data directory').env(DIR_ENV))
    .option('--master <host:port>', 'ask a running master on its replication port instead')
    .addOption(new Option('--token <token>', 'the master\'s haAuthToken').env(TOKEN_ENV))
    .option('--json', 'print one JSON document on stdout (nothing else goes there)')
    .option('--verbose', 'print stack traces of errors')
    .action((dir: string | undefined, options: StatusOptions) => status(dir, options));
  program.command('promote')
    .description('make a stopped follower\'s directory a master\'s (it takes writes when opened)')
    .argument('[dir]', 'the data directory (or --dir, $POCKETMQ_DIR)')
    .addOption(new Option('-d, --dir <dataDir>', 'the store\'s data directory').env(DIR_ENV))
    .option('--json', 'print one JSON document on stdout (nothing else goes there)')
    .option('--verbose', 'print stack traces of errors')
    .action((dir: string | undefined, options: { dir?: string; json?: boolean }) =>
      promote(dir, options));
}
