/**
 * Replication options (docs/replication.md), part of MessageStore's options: one type, the
 * defaults, and one resolver that validates once and names the bad property.
 */
import type * as Net from 'node:net';
import { lazyBuiltin } from '../builtins.js';
import { limits } from '../limits.js';
import { intOption, invalidOption } from '../validate.js';

/** Only a replicated store's options need it: a plain open never loads node:net. */
const net = lazyBuiltin<typeof Net>('node:net');

export type BrokerRole = 'SYNC_MASTER' | 'ASYNC_MASTER' | 'SLAVE';

export interface ReplicationOptions {
  /**
   * Replication role. SYNC_MASTER: a send resolves SEND_OK only once a follower holds the
   * message (else FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE, the message stored here);
   * ASYNC_MASTER: followers catch up by themselves; SLAVE: follow `haMasterAddress`, read-only
   * for producers (NOT_MASTER) until `promote()`. @default no replication
   */
  brokerRole?: BrokerRole | undefined;
  /**
   * The port a master listens on for followers; 0 picks a free one (`store.haPort` tells
   * which). A SLAVE listens on it once promoted. @default 10912 for a master
   */
  haListenPort?: number | undefined;
  /**
   * The address a master listens on; one other than loopback needs `haAuthToken`.
   * @default '127.0.0.1'
   */
  haListenHost?: string | undefined;
  /**
   * A shared secret both sides present: a master refuses followers without it (on loopback
   * too, once set). Required when `haListenHost` is not a loopback address.
   */
  haAuthToken?: string | undefined;
  /** A SLAVE's master: 'host:port' ('[::1]:10912' for IPv6). */
  haMasterAddress?: string | undefined;
  /**
   * SYNC_MASTER: a follower more than this many bytes behind does not count as in sync; sends
   * then resolve SLAVE_NOT_AVAILABLE. @default 268435456 (256 MiB, RocketMQ's haMaxGapNotInSync)
   */
  haSlaveFallbehindMaxBytes?: number | undefined;
  /**
   * A SLAVE copies its master's topics, consumer offsets and delay progress on connect and
   * this often. @default 5000
   */
  haConfigSyncIntervalMs?: number | undefined;
}

export const REPLICATION_OPTIONS: readonly (keyof ReplicationOptions)[] = Object.freeze([
  'brokerRole', 'haListenPort', 'haListenHost', 'haAuthToken', 'haMasterAddress',
  'haSlaveFallbehindMaxBytes', 'haConfigSyncIntervalMs',
]);

export const replicationDefaults = Object.freeze({
  haListenPort: 10912,
  haListenHost: '127.0.0.1',
  haSlaveFallbehindMaxBytes: 256 * 2 ** 20,
  haConfigSyncIntervalMs: 5000,
});

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface ResolvedReplicationOptions {
  readonly role: BrokerRole | null;
  /** Where to listen (a master; a SLAVE once promoted), or null. */
  readonly listen: HostPort | null;
  readonly authToken: string | null;
  readonly master: HostPort | null;
  readonly fallbehindMaxBytes: number;
  readonly configSyncIntervalMs: number;
}

const ROLES: readonly BrokerRole[] = ['SYNC_MASTER', 'ASYNC_MASTER', 'SLAVE'];

/** Check the replication options among a store's options (others are left alone). */
export function resolveReplicationOptions(o: Record<string, unknown>):
  ResolvedReplicationOptions {
  const role = o.brokerRole ?? null;
  if (role === null) {
    const stray = REPLICATION_OPTIONS.find((k) => o[k] !== undefined);
    if (stray !== undefined) throw invalidOption(stray, 'needs option brokerRole');
    return { role: null, listen: null, authToken: null, master: null, fallbehindMaxBytes: 0,
      configSyncIntervalMs: replicationDefaults.haConfigSyncIntervalMs };
  }
  if (!ROLES.includes(role as BrokerRole)) {
    throw invalidOption('brokerRole', `must be one of ${ROLES.join(', ')}, got ${String(role)}`);
  }
  const slave = role === 'SLAVE';
  const host = o.haListenHost ?? replicationDefaults.haListenHost;
  if (typeof host !== 'string' || host === '' || host.length > 255) {
    throw invalidOption('haListenHost', `must be a host name or address, got ${String(host)}`);
  }
  const port = intOption(o, 'haListenPort', replicationDefaults.haListenPort, 0, 65_535);
  const token = o.haAuthToken ?? null;
  if (token !== null && (typeof token !== 'string' || token === '' ||
    Buffer.byteLength(token) > limits.maxReplicationTokenBytes)) {
    throw invalidOption('haAuthToken', `must be a string of 1 to ` +
      `${limits.maxReplicationTokenBytes} bytes`);
  }
  const listens = !slave || o.haListenPort !== undefined;
  if (listens && token === null && !isLoopback(host)) {
    throw invalidOption('haAuthToken', `is required when haListenHost (${host}) is not a ` +
      'loopback address: followers on other machines must present it');
  }
  if (!slave && o.haMasterAddress !== undefined) {
    throw invalidOption('haMasterAddress', 'is for brokerRole SLAVE only');
  }
  const master = slave ? parseHostPort(o.haMasterAddress, 'haMasterAddress') : null;
  return {
    role: role as BrokerRole,
    listen: listens ? { host, port } : null,
    authToken: token as string | null,
    master,
    fallbehindMaxBytes: intOption(o, 'haSlaveFallbehindMaxBytes',
      replicationDefaults.haSlaveFallbehindMaxBytes, 0, Number.MAX_SAFE_INTEGER),
    configSyncIntervalMs: intOption(o, 'haConfigSyncIntervalMs',
      replicationDefaults.haConfigSyncIntervalMs, 10, 3_600_000),
  };
}

/** 'host:port' or '[v6]:port'. */
export function parseHostPort(value: unknown, property: string): HostPort {
  const m = typeof value === 'string' ? /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/
    .exec(value) : null;
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 1 && port <= 65_535)) {
    throw invalidOption(property, `must be 'host:port' (or '[v6 address]:port'), got ` +
      `${JSON.stringify(value)}`);
  }
  return { host: m[1] ?? m[2]!, port };
}

/** An address only this machine reaches. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return net().isIPv4(host) && host.startsWith('127.');
}
