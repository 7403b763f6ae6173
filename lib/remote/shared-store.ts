/**
 * Opening a store with `multiProcess: true`: own the directory (and serve it on the owner
 * socket), or become a client of its owner (shared-port.ts).
 */
import fs from 'node:fs';
import type { Broker } from '../broker/broker.js';
import { PocketMQError } from '../errors.js';
import type { ResolvedStoreOptions } from '../store/options.js';
import type { StoreEngine } from '../store/store-engine.js';
import { ownerSocketAddress } from './owner-socket.js';
import { OwnerServer } from './server.js';
import { SharedPort, type OwnerHandle } from './shared-port.js';

export async function openShared(dir: string, options: ResolvedStoreOptions,
  openLocal: () => Promise<{ engine: StoreEngine; broker: Broker }>): Promise<SharedPort> {
  if (typeof dir !== 'string' || dir === '') {
    throw new PocketMQError('INVALID_OPTION', 'the data directory (argument dir) must be a path',
      { property: 'dir' });
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const becomeOwner = async (): Promise<OwnerHandle | null> => {
    let opened: { engine: StoreEngine; broker: Broker };
    try {
      opened = await openLocal();
    } catch (err) {
      if (err instanceof PocketMQError && err.code === 'STORE_LOCKED') return null;
      throw err;
    }
    const { engine, broker } = opened;
    let server: OwnerServer;
    try {
      server = await OwnerServer.start(broker, options.logger);
    } catch (err) {
      await broker.close().catch(() => undefined);
      await engine.close().catch(() => undefined);
      throw err;
    }
    return {
      port: broker,
      close: async () => {
        await server.close();
        try {
          await broker.close();
        } finally {
          await engine.close();
        }
      },
    };
  };
  return SharedPort.open({ address: ownerSocketAddress(dir), clock: options.clock,
    logger: options.logger, becomeOwner });
}
