/**
 * Asks a running master for its replication status over its replication port (a STATUS_REQUEST
 * instead of a follower's HELLO, with the same token): `pocketmq replication status --master`.
 * The master answers once and closes; a wrong token is refused (and logged by the master).
 */
import net from 'node:net';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import type { HostPort } from './options.js';
import {
  decodeRefused, decodeStatus, encodeStatusRequest, FrameDecoder, FrameType,
} from './protocol.js';

/** The master's status object (ReplicationStatus's shape), or a coded error. */
export function requestMasterStatus(master: HostPort, token: string | null,
  timeoutMs = 5000): Promise<Record<string, unknown>> {
  const address = master.host.includes(':') ? `[${master.host}]:${master.port}`
    : `${master.host}:${master.port}`;
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder(limits.maxReplicationFrameBytes);
    const socket = net.connect({ host: master.host, port: master.port });
    let settled = false;
    const settle = (err: Error | null, status?: Record<string, unknown>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== null) reject(err);
      else resolve(status!);
    };
    const fail = (why: string, cause?: unknown): void => settle(new PocketMQError('IO_ERROR',
      `replication status from ${address}: ${why}`, { cause }));
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    socket.on('connect', () => socket.write(encodeStatusRequest(token ?? '')));
    socket.on('error', (err) => fail(err.message, err));
    socket.on('close', () => fail('the connection closed without an answer'));
    socket.on('data', (chunk: Buffer) => {
      try {
        decoder.push(chunk);
        const frame = decoder.next();
        if (frame === null) return;
        if (frame.type === FrameType.REFUSED) {
          fail(`refused: ${decodeRefused(frame.payload)}`);
        } else if (frame.type === FrameType.STATUS) {
          settle(null, decodeStatus(frame.payload));
        } else {
          fail(`unexpected frame type ${frame.type}`);
        }
      } catch (err) {
        fail(err instanceof Error ? err.message : String(err), err);
      }
    });
  });
}
