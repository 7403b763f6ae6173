/**
 * `stats`: the store's statistics. `store.stats()` is a nested plain object; it is shown
 * generically, so a new figure appears without a change here: top-level figures first, then one
 * section of `label  value` rows per nested object, and a table per array of objects (`topics`,
 * `groups`). Units come from the names (output.formatByKey: `...Bytes`, `...Ms`, `...Us`).
 * Appends and flushes since open are left out of the human view when there were none.
 */
import type { Command } from 'commander';
import { withCommonOptions, withReadOnlyStore, type CommonOptions } from './context.js';
import {
  formatByKey, isNumericColumn, label, renderPairs, renderTable, words, writeJson, writeOut,
  type Column,
} from './output.js';

type Plain = Record<string, unknown>;

function isPlain(value: unknown): value is Plain {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** An array of objects as a table: one column per key, in order of first appearance. */
function renderArray(items: readonly unknown[]): string {
  if (items.length === 0) return '  (none)\n';
  if (!items.every(isPlain)) return `  ${items.map((v) => formatByKey('', v)).join(', ')}\n`;
  const keys = [...new Set(items.flatMap((item) => Object.keys(item)))];
  const columns: Column[] = keys.map((key) => ({ header: label(key),
    align: isNumericColumn(key, items.find((i) => i[key] !== undefined)?.[key]) ? 'right'
      : 'left' }));
  return renderTable(columns, items.map((item) => keys.map((k) => formatByKey(k, item[k]))))
    .replace(/^(?=.)/gm, '  ');
}

/** Nested figures as `a.b` labels; arrays of objects go to `tables` under their path. */
function flatten(value: Plain, prefix: string, pairs: [string, string][],
  tables: [string, unknown[]][]): void {
  for (const [key, v] of Object.entries(value)) {
    const name = prefix === '' ? label(key) : `${prefix}.${label(key)}`;
    if (isPlain(v)) flatten(v, name, pairs, tables);
    else if (Array.isArray(v) && v.some(isPlain)) tables.push([name, v]);
    else pairs.push([name, formatByKey(key, v)]);
  }
}

/** The human rendering of a stats object. */
export function renderStats(stats: Plain): string {
  const top: [string, string][] = [];
  const sections: string[] = [];
  const tables: [string, unknown[]][] = [];
  for (const [key, value] of Object.entries(stats)) {
    if (isPlain(value)) {
      const pairs: [string, string][] = [];
      flatten(value, '', pairs, tables);
      if (pairs.length > 0) sections.push(`${words(key)}:\n${renderPairs(pairs, '  ')}`);
    } else if (Array.isArray(value)) {
      tables.push([words(key), value]);
    } else {
      top.push([label(key), formatByKey(key, value)]);
    }
  }
  for (const [label, items] of tables) sections.push(`${label}:\n${renderArray(items)}`);
  return [top.length > 0 ? renderPairs(top) : '', ...sections].filter((s) => s !== '')
    .join('\n');
}

/**
 * The stats for people: appends and flushes since open are shown only when there were some
 * (a read-only open does neither), instead of percentiles of work never done.
 */
export function withoutIdleWork(stats: Plain): Plain {
  const view: Plain = { ...stats };
  const count = (key: string): number => {
    const v = view[key];
    return isPlain(v) && typeof v.count === 'number' ? v.count : -1;
  };
  const appended = view.appended;
  if (isPlain(appended) && appended.messages === 0 && count('appendLatency') <= 0) {
    delete view.appended;
    delete view.appendLatency;
    view.appends = stats.readOnly === true ? 'none (a read-only open appends nothing)'
      : 'none since open';
  }
  if (count('flushLatency') === 0) {
    delete view.flushLatency;
    view.flushes = stats.readOnly === true ? 'none (a read-only open flushes nothing)'
      : 'none since open';
  }
  return view;
}

async function stats(options: CommonOptions): Promise<void> {
  const result = await withReadOnlyStore(options.dir, (store) => store.stats());
  if (options.json === true) {
    await writeJson(result);
    return;
  }
  await writeOut(renderStats(withoutIdleWork(result as unknown as Plain)));
}

export function registerStatsCommand(program: Command): void {
  withCommonOptions(program.command('stats')
    .description('the store\'s statistics: sizes, offsets, flush times, topics and groups'))
    .action((options: CommonOptions) => stats(options));
}
