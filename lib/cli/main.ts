#!/usr/bin/env node
/**
 * `pocketmq <command> --dir <dataDir> [--json]`: the admin command (docs/cli.md).
 * This file builds the commander program from the command modules and turns every failure into
 * one line on stderr and an exit code (context.ts EXIT): no stack trace unless `--verbose` or
 * NODE_DEBUG=pocketmq.
 */
import fs from 'node:fs';
import { debuglog } from 'node:util';
import { Command, CommanderError } from 'commander';
import { PocketMQError } from '../errors.js';
import { registerAdminCommands, registerDlqResendCommand } from './admin.js';
import { registerBrowseCommand } from './browse.js';
import { CliError, EXIT } from './context.js';
import { registerDlqListCommand, registerProgressCommand } from './groups.js';
import { exitQuietlyOnBrokenPipe, writeErr } from './output.js';
import { registerQueryCommands } from './query.js';
import { registerReplicationCommands } from './replication.js';
import { registerStatsCommand } from './stats.js';
import { registerTailCommand } from './tail.js';
import { registerTopicCommands } from './topics.js';
import { registerTraceCommand } from './trace.js';
import { registerVerifyCommand } from './verify.js';

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url),
      'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

function buildProgram(): Command {
  const program = new Command('pocketmq')
    .description('inspect and administer a pocketmq store')
    .version(version())
    .exitOverride()
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => writeErr(text),
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', '\nEvery command takes --dir <dataDir> (default: $POCKETMQ_DIR) and ' +
      '--json (stdout then\nholds one JSON document).\nExit codes: 0 done, 1 failed or verify ' +
      'found problems, 2 usage error, invalid name\nor no store, 3 the store is open in another ' +
      'process (changing commands). More in docs/cli.md.');
  registerTopicCommands(program);
  registerProgressCommand(program);
  registerQueryCommands(program);
  registerBrowseCommand(program);
  registerTailCommand(program);
  registerTraceCommand(program);
  registerAdminCommands(program);
  const dlq = program.command('dlq').description('dead letters of a consumer group: list, resend');
  registerDlqListCommand(dlq);
  registerDlqResendCommand(dlq);
  registerStatsCommand(program);
  registerVerifyCommand(program);
  registerReplicationCommands(program);
  return program;
}

/** Codes that mean the command was asked for something that cannot be: usage errors. */
function exitCodeOf(err: PocketMQError): number {
  if (err.code === 'STORE_LOCKED') return EXIT.LOCKED;
  if ((err.code as string) === 'STORE_NOT_FOUND' || err.code.startsWith('INVALID_')) {
    return EXIT.USAGE;
  }
  return EXIT.FAILED;
}

/** Print `err` for people; returns the exit code. */
function reportError(err: unknown, verbose: boolean): number {
  if (err instanceof CommanderError) {
    // commander printed the message already (help, version, or a usage error).
    return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  let code: number = EXIT.FAILED;
  if (err instanceof CliError) {
    writeErr(`pocketmq: ${err.message}\n`);
    code = err.exitCode;
  } else if (err instanceof PocketMQError) {
    writeErr(`pocketmq: ${err.code}: ${err.message}\n`);
    code = exitCodeOf(err);
  } else {
    writeErr(`pocketmq: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  if (verbose && err instanceof Error) {
    writeErr(`${err.stack ?? ''}\n`);
    if (err.cause !== undefined) writeErr(`caused by: ${String(err.cause)}\n`);
  }
  return code;
}

async function main(argv: readonly string[]): Promise<void> {
  exitQuietlyOnBrokenPipe();
  const verbose = argv.includes('--verbose') || debuglog('pocketmq').enabled;
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (err) {
    process.exitCode = reportError(err, verbose);
  }
}

void main(process.argv);
