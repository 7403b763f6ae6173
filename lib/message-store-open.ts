/**
 * Opening a data directory for MessageStore.open: the options split between the engine, the
 * broker and replication; the engine, then replication when the store has a broker role, then
 * the broker on top; or, with `multiProcess: true`, the owner socket, which opens them the same
 * way in whichever process owns the directory. With message-store.ts, the one place where the
 * layers meet. Replication and the owner socket are loaded on first use: a store without them
 * never runs that code, and it stays out of a short process's start.
 */
import { PocketMQError } from './errors.js';
import { Broker } from './broker/broker.js';
import { brokerOptionsOn, resolveBrokerOptions } from './broker/options.js';
import { StoreEngine } from './store/store-engine.js';
import { resolveStoreOptions, type StoreOptions } from './store/options.js';
import type { SharedPort } from './remote/shared-port.js';
import { REPLICATION_OPTIONS, resolveReplicationOptions } from './replication/options.js';
import type { Replication } from './replication/replication.js';
import { transportOf } from './replication/transport.js';
import { boolOption, optionsRecord } from './validate.js';

/** A store opened in this process. */
export interface LocalStore {
  readonly engine: StoreEngine;
  readonly broker: Broker;
  readonly replication: Replication | null;
}

/** Either the owner socket's port (`multiProcess: true`) or a store opened here. */
export type OpenedStore = { readonly shared: SharedPort; readonly local: null } |
  { readonly shared: null; readonly local: LocalStore };

/** Open the store in `dir` with MessageStore's options (checked here). */
export async function openStore(dir: string, options: object): Promise<OpenedStore> {
  const { messageDelayLevel, persistConsumerOffsetIntervalMs, multiProcess, trace,
    timerMaxDelayMs, transactionTimeoutMs, transactionCheckIntervalMs, transactionCheckMax,
    ...rest } = optionsRecord(options);
  const replicating = resolveReplicationOptions(rest);
  const transport = replicating.role === null ? undefined : transportOf(options);
  const storeOptions = Object.fromEntries(Object.entries(rest)
    .filter(([k]) => !(REPLICATION_OPTIONS as readonly string[]).includes(k))) as StoreOptions;
  const shared = boolOption({ multiProcess }, 'multiProcess', false);
  if (replicating.role !== null && shared) {
    throw new PocketMQError('INVALID_OPTION', 'brokerRole and multiProcess: true cannot be ' +
      'combined: a replicating store is opened by one process', { property: 'multiProcess' });
  }
  const brokerOptions = resolveBrokerOptions({ messageDelayLevel,
    persistConsumerOffsetIntervalMs, trace, timerMaxDelayMs, transactionTimeoutMs,
    transactionCheckIntervalMs, transactionCheckMax });
  const openLocal = async (): Promise<LocalStore> => {
    // The broker holds back retention from what its scheduled messages still need.
    const engine = await StoreEngine.open(dir, storeOptions, { retentionHeld: true });
    let replication: Replication | null = null;
    try {
      const o = engine.options;
      let broker: Broker | null = null;
      if (replicating.role !== null) {
        const { Replication } = await import('./replication/replication.js');
        replication = await Replication.start(engine, replicating, {
          applyConfig: (name, bytes) => broker?.applyReplicatedConfig(name, bytes),
          promoted: () => broker?.promoted(), transport,
        });
      }
      // A follower writes no trace records (it takes no appends).
      broker = Broker.open(engine, { ...brokerOptionsOn(brokerOptions, o),
        trace: brokerOptions.trace && !engine.isFollowing });
      const r = engine.recovery;
      if (r !== null) {
        o.logger.debug(`pocketmq: recovery checked ${r.checkedBytes} bytes, ${r.records} ` +
          `records, redispatched ${r.redispatched}, ended (${r.reason}) at ${r.endOffset}` +
          `${brokerOptions.trace ? '; message trace on' : ''}`);
      }
      return { engine, broker, replication };
    } catch (err) {
      await replication?.close().catch(() => undefined);
      await engine.close().catch(() => undefined);
      throw err;
    }
  };
  if (shared) {
    const { openShared } = await import('./remote/shared-store.js');
    return { shared: await openShared(dir, resolveStoreOptions(storeOptions), openLocal),
      local: null };
  }
  return { shared: null, local: await openLocal() };
}
