/**
 * `verify`: check every record's checksum, and the ConsumeQueues and index against the commit
 * log, without a lock and without changing a file. Exit code 0 only when the store is healthy,
 * 1 when problems were found. A progress bar (bytes checked) on a terminal.
 */
import type { Command } from 'commander';
import { verifyStore } from '../index.js';
import { EXIT, withCommonOptions, type CommonOptions } from './context.js';
import { formatBytes, plural, renderTable, writeJson, writeOut } from './output.js';
import { ProgressBar } from './progress.js';

async function verify(options: CommonOptions): Promise<void> {
  const bar = new ProgressBar('verify', { total: 0, format: formatBytes });
  let report;
  try {
    report = await verifyStore(options.dir, {
      onProgress: (p) => bar.update(p.checkedBytes, p.totalBytes),
    });
  } finally {
    bar.finish();
  }
  if (!report.healthy) process.exitCode = EXIT.FAILED;
  if (options.json === true) {
    await writeJson(report);
    return;
  }
  const facts = [`checked ${plural(report.records, 'record')}, ` +
    `${formatBytes(report.checkedBytes)} of commit log, ${plural(report.queues, 'queue')}, ` +
    `${plural(report.indexEntries, 'index entry')}`];
  if (report.rebuiltRecords > 0) {
    facts.push(`entries of ${plural(report.rebuiltRecords, 'record')} not yet written by the ` +
      'owner were rebuilt from the log and checked as rebuilt');
  }
  if (report.tornTail) facts.push('the log ends in a torn or unfinished record (left out)');
  if (report.problems.some((p) => p.kind === 'open')) {
    facts.splice(0, facts.length, 'the store does not open past this damage: nothing else ' +
      'was checked');
  }
  const count = report.problemCount;
  if (count === 0) {
    await writeOut(`${facts.join('\n')}\n${report.healthy ? 'healthy' : 'NOT healthy'}\n`);
    return;
  }
  const rows = report.problems.map((p) => [p.kind, p.offset === undefined ? '-' : String(p.offset),
    p.topic ?? '-', p.queueId === undefined ? '-' : String(p.queueId), p.message]);
  const shown = report.problems.length < count ? ` (the first ${report.problems.length} shown)`
    : '';
  await writeOut(renderTable([
    { header: 'kind' }, { header: 'offset', align: 'right' }, { header: 'topic' },
    { header: 'queue', align: 'right' }, { header: 'problem' },
  ], rows) + `${facts.join('\n')}\n${plural(count, 'problem')} found${shown}\n`);
}

export function registerVerifyCommand(program: Command): void {
  withCommonOptions(program.command('verify')
    .description('check every record\'s checksum, the consume queues and the index ' +
      '(exit code 0 only when healthy)'))
    .action((options: CommonOptions) => verify(options));
}
