/**
 * Logging: an injected logger (pino's shape: methods taking one string, called on the object)
 * hears what the store and its clients do; the default logger is `util.debuglog('pocketmq')`,
 * silent unless NODE_DEBUG names pocketmq (checked in a child process: NODE_DEBUG is read once
 * per process).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { storeDefaults, type Logger } from '../../lib/index.js';
import { debugLogger } from '../../lib/store/options.js';
import { useTempDirs } from '../support/backends.js';
import { ensureBuilt } from '../support/dist.js';
import { openStore, startPush, until } from '../support/messaging.js';

const tmp = useTempDirs('pmq-log-');

/** pino's shape: level methods on a prototype that need `this` (they fail if detached). */
class PinoLike implements Logger {
  readonly lines: { level: string; msg: string }[] = [];
  private write(level: string, msg: string): void {
    if (typeof msg !== 'string') throw new Error('one string per call');
    this.lines.push({ level, msg });
  }
  debug(msg: string): void {
    this.write('debug', msg);
  }
  info(msg: string): void {
    this.write('info', msg);
  }
  warn(msg: string): void {
    this.write('warn', msg);
  }
  error(msg: string): void {
    this.write('error', msg);
  }
  trace(msg: string): void {
    this.write('trace', msg);
  }
  of(level: string): string[] {
    return this.lines.filter((l) => l.level === level).map((l) => l.msg);
  }
}

const root = path.resolve(import.meta.dirname, '..', '..');

/** Open a store on dist/ in a child process, send one message, close; its stderr. */
function childStderr(dir: string, env: NodeJS.ProcessEnv): string {
  const entry = pathToFileURL(path.join(root, 'dist', 'index.js')).href;
  const script = `import { MessageStore } from ${JSON.stringify(entry)};
    const store = await MessageStore.open(${JSON.stringify(dir)});
    await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
    await store.close();`;
  const { NODE_DEBUG: _inherited, ...base } = process.env;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script],
    { env: { ...base, ...env }, encoding: 'utf8', timeout: 30_000 });
  expect(child.status, child.stderr).toBe(0);
  return child.stderr;
}

describe('injected logger', () => {
  it('accepts a pino-shaped logger as is and tells it what happens', async () => {
    const logger = new PinoLike();
    const store = await openStore(tmp.make(), { logger });
    try {
      await store.createTopic('t', { queueNums: 2 });
      let calls = 0;
      await startPush(store, { group: 'cg', instanceName: 'w1' }, 't', () => {
        calls++;
        throw new Error('listener exploded');
      });
      await store.createProducer({ group: 'pg' }).send({ topic: 't', body: 'x' });
      await until(() => calls > 0, 'the listener call');
      await until(() => logger.of('error').length > 0, 'the error line');
    } finally {
      await store.close();
    }
    expect(logger.of('debug').some((m) => m.startsWith('pocketmq: opened'))).toBe(true);
    expect(logger.of('debug').some((m) => m.startsWith('pocketmq: recovery checked'))).toBe(true);
    expect(logger.of('debug')).toContain('pocketmq: rebalance cg/w1: +2 -0 queues, owns 2');
    expect(logger.of('error')[0]).toContain('listener exploded');
    expect(logger.of('error')[0]).toContain('consumer cg');
  });

  it('defaults to the debuglog logger', () => {
    expect(storeDefaults.logger).toBe(debugLogger);
  });
});

describe('NODE_DEBUG=pocketmq', () => {
  beforeAll(() => ensureBuilt());

  it('prints pocketmq lines to stderr, and nothing without it', () => {
    const dir = tmp.make();
    const loud = childStderr(path.join(dir, 'a'), { NODE_DEBUG: 'pocketmq' });
    expect(loud).toMatch(/^POCKETMQ \d+: debug pocketmq: opened /m);
    expect(loud).toMatch(/^POCKETMQ \d+: debug pocketmq: recovery checked /m);
    const quiet = childStderr(path.join(dir, 'b'), {});
    expect(quiet).toBe('');
  });
});
