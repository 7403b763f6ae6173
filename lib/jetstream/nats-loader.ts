/**
 * The NATS client packages, loaded on the first `JetStreamStore.connect` by dynamic import:
 * `@nats-io/transport-node` and `@nats-io/jetstream` are optional peer dependencies, so the
 * embedded store never loads them and an application that does not install them never needs
 * them. Without them, connect throws NOT_SUPPORTED saying what to install.
 */
import { PocketMQError } from '../index.js';

import type * as TransportModule from '@nats-io/transport-node';
import type * as JetStreamModule from '@nats-io/jetstream';

type Transport = typeof TransportModule;
type JetStreamApi = typeof JetStreamModule;

/** What pocketmq/jetstream uses of the two packages. */
export interface NatsModules {
  readonly connect: Transport['connect'];
  readonly headers: Transport['headers'];
  readonly jetstream: JetStreamApi['jetstream'];
  readonly jetstreamManager: JetStreamApi['jetstreamManager'];
}

export const INSTALL_HINT = 'npm install @nats-io/jetstream@3 @nats-io/transport-node@3';

/**
 * The two packages (Node's module cache makes later calls cheap). A missing package is
 * NOT_SUPPORTED with the command that installs them.
 */
export async function loadNats(): Promise<NatsModules> {
  let transport: Transport;
  let api: JetStreamApi;
  try {
    [transport, api] = await Promise.all([
      import('@nats-io/transport-node'),
      import('@nats-io/jetstream'),
    ]);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
    throw new PocketMQError('NOT_SUPPORTED', 'pocketmq/jetstream needs the NATS client ' +
      `packages, which are optional peer dependencies and are not installed: ${INSTALL_HINT}`,
    { cause: err });
  }
  return { connect: transport.connect, headers: transport.headers,
    jetstream: api.jetstream, jetstreamManager: api.jetstreamManager };
}
