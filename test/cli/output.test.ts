/**
 * The command's output helpers (lib/cli/output.ts, progress.ts, message-view.ts, stats.ts):
 * units, alignment, body previews, the generic stats rendering, and a progress bar drawn only
 * on a terminal.
 */
import { describe, expect, it } from 'vitest';
import {
  formatByKey, formatBytes, formatDurationMs, formatTime, renderTable, StreamingTable,
} from '../../lib/cli/output.js';
import { bodyPreview, bodyText } from '../../lib/cli/message-view.js';
import { ProgressBar, type ProgressStream } from '../../lib/cli/progress.js';
import { renderStats } from '../../lib/cli/stats.js';

describe('units', () => {
  it('prints sizes in binary units, durations and ISO times', () => {
    expect([0, 1023, 1024, 1536, 10 * 2 ** 20 + 2 ** 19, 3 * 2 ** 30, 2 ** 50 * 2048]
      .map(formatBytes)).toEqual(['0 B', '1023 B', '1.00 KiB', '1.50 KiB', '10.5 MiB',
      '3.00 GiB', '2048 PiB']);
    expect([0.25, 3, 12.4, 1500, 75_000, 2 * 3_600_000 + 5 * 60_000, 3 * 86_400_000]
      .map(formatDurationMs)).toEqual(['250 µs', '3 ms', '12 ms', '1.50 s', '1m 15s',
      '2h 05m', '3d 0h']);
    expect(formatTime(0)).toBe('-');
    expect(formatTime(Date.UTC(2024, 0, 2, 3, 4, 5, 6))).toBe('2024-01-02T03:04:05.006Z');
    expect(formatByKey('storeBytes', 2048)).toBe('2.00 KiB');
    expect(formatByKey('p99Us', 1500)).toBe('1.5 ms');
    expect(formatByKey('bytes', 4096)).toBe('4.00 KiB');
    expect(formatByKey('usedRatio', 0.4567)).toBe('45.7%');
    expect(formatByKey('lastStoreTimestamp', 0)).toBe('-');
    expect(formatByKey('segments', 3)).toBe('3');
  });
});

describe('tables', () => {
  it('aligns columns, numbers to the right, headers in capitals', () => {
    expect(renderTable([{ header: 'topic' }, { header: 'count', align: 'right' }],
      [['a', '1'], ['longer', '12345']])).toBe(
      'TOPIC   COUNT\na           1\nlonger  12345\n');
  });

  it('a streaming table keeps the widths of its first rows and cuts longer text', () => {
    const t = new StreamingTable([{ header: 'name' }, { header: 'n', align: 'right' },
      { header: 'rest' }]);
    expect(t.render([])).toBe('');
    expect(t.render([['abcd', '1', 'x']])).toBe('NAME  N  REST\nabcd  1  x\n');
    expect(t.render([['abcdefg', '100', 'a long last cell']])).toBe(
      'abc…  100  a long last cell\n');
  });
});

describe('body previews', () => {
  it('shows printable UTF-8 as text, escaped and cut, and anything else as hex', () => {
    expect(bodyPreview(Buffer.from('héllo\nworld'), 40)).toBe('héllo\\nworld');
    expect(bodyPreview(Buffer.from('x'.repeat(50)), 10)).toBe(`${'x'.repeat(9)}…`);
    expect(bodyPreview(Buffer.from([0, 1, 0xff]), 40)).toBe('0x0001ff');
    expect(bodyPreview(Buffer.alloc(100, 7), 11)).toBe('0x07070707…');
    expect(bodyText(Buffer.from([0xc3, 0x28]))).toBeNull(); // invalid UTF-8
    expect(bodyText(Buffer.from('bell\u0007'))).toBeNull();
  });
});

describe('stats rendering', () => {
  it('figures, sections with dotted labels and units, and arrays as tables', () => {
    const text = renderStats({
      role: 'readonly',
      commitLog: { maxOffset: 10, segmentSizeBytes: 4 * 2 ** 20 },
      appendLatency: { count: 2, p99Us: 250 },
      disk: { nested: { freeBytes: 1024 } },
      topics: [{ topic: 'a', queues: 4, messages: 10 }],
      groups: [],
    });
    expect(text).toBe([
      'role  readonly',
      '',
      'commit log:',
      '  max offset    10',
      '  segment size  4.00 MiB',
      '',
      'append latency:',
      '  count  2',
      '  p99    250 µs',
      '',
      'disk:',
      '  nested.free  1.00 KiB',
      '',
      'topics:',
      '  TOPIC  QUEUES  MESSAGES',
      '  a           4        10',
      '',
      'groups:',
      '  (none)',
      '',
    ].join('\n'));
  });
});

class FakeStream implements ProgressStream {
  readonly columns = 60;
  text = '';
  constructor(readonly isTTY: boolean) {}
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

describe('progress bar', () => {
  it('draws on a terminal, at most every 100 ms, and erases itself at the end', () => {
    const stream = new FakeStream(true);
    let now = 1000;
    const bar = new ProgressBar('verify', { total: 4096, format: formatBytes, stream,
      now: () => now });
    bar.update(1024);
    expect(stream.text.startsWith('\r\x1b[K')).toBe(true);
    const drawn = /^verify \[(#+)(-+)\] {2}25% 1\.00 KiB \/ 4\.00 KiB$/.exec(stream.text.slice(4));
    expect(drawn).not.toBeNull();
    const [filled, empty] = [drawn![1]!.length, drawn![2]!.length];
    expect(filled / (filled + empty)).toBeCloseTo(0.25, 1);
    expect(stream.text.slice(4).length).toBeLessThan(stream.columns);
    stream.text = '';
    now += 50;
    bar.update(2048);
    expect(stream.text).toBe(''); // too soon
    now += 60;
    bar.update(4096);
    expect(stream.text).toMatch(/\[#+\] 100% 4\.00 KiB \/ 4\.00 KiB$/);
    bar.finish();
    expect(stream.text.endsWith('\r\x1b[K')).toBe(true);
    stream.text = '';
    bar.update(1);
    expect(stream.text).toBe('');
  });

  it('writes nothing when the stream is not a terminal', () => {
    const stream = new FakeStream(false);
    const bar = new ProgressBar('browse', { total: 10, stream });
    expect(bar.enabled).toBe(false);
    for (let i = 0; i <= 10; i++) bar.update(i);
    bar.finish();
    expect(stream.text).toBe('');
  });
});
