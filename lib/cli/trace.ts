/**
 * `trace <msgId>`: a message's trace events (stored, consumed, dead-lettered), oldest first, as
 * the owner recorded them with the store option `trace` on.
 */
import type { Command } from 'commander';
import type { TraceEvent } from '../broker/trace/trace-events.js';
import { withCommonOptions, withReadOnlyStore, type CommonOptions } from './context.js';
import { formatDurationMs, formatTime, renderTable, writeJson, writeOut } from './output.js';

/** What happened, in one cell: the send status, the listener's result, or the DLQ topic. */
function outcome(e: TraceEvent): string {
  if (e.type === 'PUB') return e.status;
  if (e.type === 'SUB') return `${e.result} (try ${e.reconsumeTimes + 1})`;
  return `to ${e.dlqTopic}`;
}

function took(e: TraceEvent): string {
  if (e.type === 'PUB') return formatDurationMs(e.costMs);
  if (e.type === 'SUB') return formatDurationMs(e.durationMs);
  return '-';
}

async function trace(msgId: string, options: CommonOptions): Promise<void> {
  const events = await withReadOnlyStore(options.dir, (store) => store.queryTrace(msgId));
  if (options.json === true) {
    await writeJson({ msgId, events });
    return;
  }
  if (events.length === 0) {
    await writeOut(`no trace events for ${msgId} (was the store opened with trace: true?)\n`);
    return;
  }
  await writeOut(renderTable([
    { header: 'time' }, { header: 'event' }, { header: 'group' }, { header: 'client' },
    { header: 'pid', align: 'right' }, { header: 'topic' }, { header: 'queue', align: 'right' },
    { header: 'offset', align: 'right' }, { header: 'outcome' }, { header: 'took', align: 'right' },
  ], events.map((e) => [formatTime(e.timestamp), e.type, e.group, e.clientId, String(e.pid),
    e.topic, String(e.queueId), String(e.queueOffset), outcome(e), took(e)])));
}

export function registerTraceCommand(program: Command): void {
  withCommonOptions(program.command('trace')
    .description('the trace events of a message: stored, consumed, dead-lettered')
    .argument('<msgId>', 'the message id'))
    .action((msgId: string, options: CommonOptions) => trace(msgId, options));
}
