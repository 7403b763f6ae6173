/**
 * JetStreamStore without a cluster: options are checked before anything connects (a missing
 * `replicas`, an embedded-store storage option, a bad delay level), `pocketmq` never loads the
 * NATS packages while `pocketmq/jetstream` says what to install when they are missing, the
 * sharding hash is the embedded store's, and the cluster fixture fails with an install hint when
 * there is no nats-server.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { queueOfShardingKey } from '../../lib/broker/sharding.js';
import { JetStreamStore } from '../../lib/jetstream/index.js';
import type { JetStreamStoreOptions } from '../../lib/jetstream/index.js';
import { queueOfKey } from '../../lib/jetstream/producer.js';
import { NATS_SERVER_MISSING, startNatsCluster } from '../fixtures/nats-cluster.js';
import { runNode } from '../support/child.js';
import { ensureBuilt } from '../support/dist.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

async function refused(options: unknown): Promise<{ code: string; property: string;
  message: string }> {
  const err = await JetStreamStore.connect(options as JetStreamStoreOptions).then(
    () => { throw new Error('connect resolved'); }, (e: unknown) => e);
  return err as { code: string; property: string; message: string };
}

describe('JetStreamStore.connect options', () => {
  it('refuses bad options by name before it connects', async () => {
    const servers = ['nats://127.0.0.1:1'];
    expect(await refused({ servers })).toMatchObject({ code: 'INVALID_OPTION',
      property: 'replicas' });
    expect(await refused({ replicas: 3 })).toMatchObject({ code: 'INVALID_OPTION',
      property: 'servers' });
    expect(await refused({ servers, replicas: 9 })).toMatchObject({ property: 'replicas' });
    const flush = await refused({ servers, replicas: 3, flushDiskType: 'SYNC_FLUSH' });
    expect(flush).toMatchObject({ code: 'INVALID_OPTION', property: 'flushDiskType' });
    expect(flush.message).toMatch(/does not apply to JetStream/);
    expect(await refused({ servers, replicas: 3, messageDelayLevel: '1s soon' }))
      .toMatchObject({ property: 'messageDelayLevel' });
    expect(await refused({ servers, replicas: 3, typo: 1 })).toMatchObject({ property: 'typo' });
  });

  it('picks the queue of a sharding key as the embedded producer does', () => {
    const keys = ['', 'order-1', 'Aa', 'BB', 'ünï', 'a much longer key '.repeat(20),
      'polygenelubricants', 'GydZG_', 'DESIGNING WORKHOUSES'];
    for (const key of keys) {
      for (const n of [1, 3, 4, 16, 1024]) {
        expect(queueOfKey(key, n)).toBe(queueOfShardingKey(key, n));
      }
    }
  });
});

describe('pocketmq/jetstream without the NATS packages', () => {
  beforeAll(() => ensureBuilt());

  it('pocketmq works and never loads them; connect says what to install', async () => {
    const program = `
      const { MessageStore } = await import(${JSON.stringify(path.join(root, 'dist/index.js'))});
      const { JetStreamStore } = await import(
        ${JSON.stringify(path.join(root, 'dist/jetstream/index.js'))});
      const os = await import('node:os');
      const fs = await import('node:fs');
      const dir = fs.mkdtempSync(os.tmpdir() + '/pmq-nonats-');
      const store = await MessageStore.open(dir);
      const sent = await store.createProducer({ group: 'g' }).send({ topic: 't', body: 'x' });
      await store.close();
      fs.rmSync(dir, { recursive: true });
      const err = await JetStreamStore.connect({ servers: 'nats://127.0.0.1:1', replicas: 1 })
        .catch((e) => e);
      console.log(JSON.stringify({ status: sent.status, code: err.code, message: err.message }));
    `;
    const run = await runNode(['--import', path.join(root, 'test/fixtures/without-nats.mjs'),
      '--input-type=module', '-e', program]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { status: string; code: string; message: string };
    expect(result.status).toBe('SEND_OK');
    expect(result.code).toBe('NOT_SUPPORTED');
    expect(result.message).toContain('npm install @nats-io/jetstream@3 @nats-io/transport-node@3');
  });
});

describe('the NATS cluster fixture', () => {
  it('fails with an install hint when nats-server is not on PATH', async () => {
    const saved = process.env.PATH;
    process.env.PATH = path.join(root, 'no-such-dir');
    try {
      await expect(startNatsCluster(3)).rejects.toThrow(NATS_SERVER_MISSING);
    } finally {
      process.env.PATH = saved;
    }
    expect(NATS_SERVER_MISSING).toContain('apt-get install -y nats-server');
  });
});
