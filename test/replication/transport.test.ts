/**
 * The replication transport seam (lib/replication/transport.ts): a master and a follower in one
 * process, connected by the simulator's in-memory network instead of TCP, through the internal
 * REPLICATION_TRANSPORT open option; and a master that refuses a connection over its limit
 * survives that connection's reset.
 */
import { describe, expect, it } from 'vitest';
import { MessageStore } from '../../lib/message-store.js';
import { REPLICATION_TRANSPORT, storeInternals } from '../../lib/internal.js';
import { limits } from '../../lib/limits.js';
import { ManualClock } from '../../lib/store/clock.js';
import {
  decodeProbe, decodeWelcome, encodeHello, encodeProbeResult, encodeWelcome, FrameDecoder,
  FrameType, Outcome,
} from '../../lib/replication/protocol.js';
import { SimNetwork } from '../sim/sim-network.js';
import { useTempDirs } from '../support/backends.js';

const tmp = useTempDirs();
const SEGMENT = 64 * 1024;
const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

function lines(): { warn: string[]; logger: Record<string, (line: string) => void> } {
  const warn: string[] = [];
  const keep = (line: string): void => {
    warn.push(line);
  };
  return { warn, logger: { debug: () => undefined, info: () => undefined, warn: keep,
    error: keep } };
}

describe('the replication transport seam', () => {
  it('connects a follower to its master in memory; it catches up and acknowledges', async () => {
    let alive = true;
    const network = new SimNetwork({ masterAlive: () => alive, followerAlive: () => alive });
    const master = await MessageStore.open(tmp.make(), { brokerRole: 'SYNC_MASTER',
      haListenPort: 0, [REPLICATION_TRANSPORT]: network } as never);
    expect(master.haPort).toBe(10912);
    const follower = await MessageStore.open(tmp.make(), { brokerRole: 'SLAVE',
      haMasterAddress: `127.0.0.1:${master.haPort}`, [REPLICATION_TRANSPORT]: network } as never);
    try {
      await master.createTopic('Orders', { queueNums: 1 });
      const producer = master.createProducer({ group: 'p' });
      const result = await producer.send({ topic: 'Orders', body: Buffer.from('one') });
      expect(result.status).toBe('SEND_OK');
      const copy = await follower.viewMessage(result.msgId);
      expect(copy?.body.toString()).toBe('one');
      expect(network.delivered.toFollower).toBeGreaterThan(0);
      // Frames held: a SYNC_MASTER send waits for its deadline (syncFlushTimeoutMs).
      network.hold('toFollower', true);
      const waiting = producer.send({ topic: 'Orders', body: Buffer.from('two') });
      await turns(5);
      network.hold('toFollower', false);
      expect((await waiting).status).toBe('SEND_OK');
      expect(storeInternals(follower).engine.commitLogMaxOffset)
        .toBe(storeInternals(master).engine.commitLogMaxOffset);
    } finally {
      alive = false;
      await follower.close();
      await master.close();
    }
  });

  it('a connection refused over the limit may be reset by its peer: the master carries on',
    async () => {
      // Simulator seed 23 with a follower: the refused socket had no error listener, and the
      // peer's reset was an uncaught exception (with TCP: the master's process ended).
      const network = new SimNetwork({ masterAlive: () => true, followerAlive: () => true });
      const { warn, logger } = lines();
      const master = await MessageStore.open(tmp.make(), { brokerRole: 'ASYNC_MASTER',
        haListenPort: 0, logger, [REPLICATION_TRANSPORT]: network } as never);
      try {
        network.hold('toMaster', true); // no HELLO arrives: each connection stays counted
        const at = { host: '127.0.0.1', port: 10912 };
        for (let i = 0; i <= limits.maxReplicationConnections; i++) {
          network.connect(at).on('error', () => undefined);
        }
        expect(warn.some((l) => /refused .*already connected/.test(l))).toBe(true);
        expect(network.cut()).toBe(limits.maxReplicationConnections + 1);
        await turns(5);
        await master.createTopic('Orders', { queueNums: 1 });
        const result = await master.createProducer({ group: 'p' })
          .send({ topic: 'Orders', body: Buffer.from('x') });
        expect(result.status).toBe('SEND_OK');
      } finally {
        await master.close();
      }
    });
});

describe('a follower whose log ends where the master\'s starts', () => {
  it('continues there: it is not told that it diverged', async () => {
    // Simulator seed 30 with a follower: retention deleted the segment the follower held
    // whole; the master could not find its last record, called the logs diverged, and the
    // follower cut its whole log (then refused the master's records: queue offsets).
    const clock = new ManualClock(1_700_000_000_000);
    const network = new SimNetwork({ masterAlive: () => true, followerAlive: () => true });
    const master = await MessageStore.open(tmp.make(), { brokerRole: 'ASYNC_MASTER',
      haListenPort: 0, clock, commitLogSegmentSize: SEGMENT, fileReservedTimeHours: 1,
      [REPLICATION_TRANSPORT]: network } as never);
    try {
      await master.createTopic('Orders', { queueNums: 1 });
      const producer = master.createProducer({ group: 'p' });
      const engine = storeInternals(master).engine;
      while (engine.commitLogMaxOffset < 2.5 * SEGMENT) {
        await producer.send({ topic: 'Orders', body: Buffer.alloc(2000, 1) });
      }
      clock.advance(2 * 3_600_000);
      await engine.runRetention();
      expect(engine.commitLogMinOffset).toBe(2 * SEGMENT);
      const socket = network.connect({ host: '127.0.0.1', port: 10912 });
      const decoder = new FrameDecoder();
      socket.on('data', (chunk: Buffer) => decoder.push(chunk));
      socket.write(encodeHello({ segmentSize: SEGMENT, minOffset: 0, maxOffset: 2 * SEGMENT,
        last: { offset: 2 * SEGMENT - 3000, size: 2100, checksum: 12345 }, token: '' }));
      let frame = decoder.next();
      for (let i = 0; i < 20 && frame === null; i++) {
        await turns(1);
        frame = decoder.next();
      }
      expect(frame?.type).toBe(FrameType.WELCOME);
      expect(decodeWelcome(frame!.payload)).toMatchObject({ outcome: Outcome.STREAM,
        start: 2 * SEGMENT });
      socket.destroy();
    } finally {
      await master.close();
    }
  });
});

describe('a follower told that its log diverged', () => {
  it('refuses itself, cutting nothing, when none of its records from the master\'s first ' +
    'offset on matches', async () => {
    // Simulator seed 11 with a follower (and seed 19 before it): after a master crash,
    // retention on the master deleted the segments where the two logs part. The follower kept
    // its segments below the master's first offset (records the master never held), cut the
    // rest, then refused the master's records over their queue offsets, for good and silently.
    // Nothing below the master's first offset can be compared: it cannot continue, and says so.
    let masterUp = true;
    const network = new SimNetwork({ masterAlive: () => masterUp, followerAlive: () => true });
    const master = await MessageStore.open(tmp.make(), { brokerRole: 'ASYNC_MASTER',
      haListenPort: 0, commitLogSegmentSize: SEGMENT, [REPLICATION_TRANSPORT]: network } as never);
    const clock = new ManualClock(1_700_000_000_000);
    const { warn, logger } = lines();
    const follower = await MessageStore.open(tmp.make(), { brokerRole: 'SLAVE', clock, logger,
      haMasterAddress: '127.0.0.1:10912', commitLogSegmentSize: SEGMENT,
      [REPLICATION_TRANSPORT]: network } as never);
    const engine = storeInternals(follower).engine;
    try {
      await master.createTopic('Orders', { queueNums: 1 });
      const producer = master.createProducer({ group: 'p' });
      while (storeInternals(master).engine.commitLogMaxOffset < 2.5 * SEGMENT) {
        await producer.send({ topic: 'Orders', body: Buffer.alloc(2000, 1) });
      }
      // Both stores are on the real disk: their segment files take real time on a busy one.
      for (const deadline = Date.now() + 20_000; Date.now() < deadline && engine
        .commitLogMaxOffset < storeInternals(master).engine.commitLogMaxOffset;) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      const end = engine.commitLogMaxOffset;
      const queueEnd = engine.getMaxOffsetInQueue('Orders', 0);
      expect(end).toBeGreaterThan(2 * SEGMENT);
      masterUp = false;
      await master.close();
      // A master that starts at 2 segments and holds none of the follower's records there.
      masterUp = true;
      const probed: number[] = [];
      let data = 0;
      await network.listen({ host: '127.0.0.1', port: 10912 }, (socket) => {
        const decoder = new FrameDecoder();
        socket.on('data', (chunk: Buffer) => {
          decoder.push(chunk);
          for (let f = decoder.next(); f !== null; f = decoder.next()) {
            if (f.type === FrameType.HELLO) {
              socket.write(encodeWelcome({ outcome: Outcome.PROBE, masterMin: 2 * SEGMENT,
                masterMax: 3 * SEGMENT, start: 0 }));
            } else if (f.type === FrameType.PROBE) {
              probed.push(...decodeProbe(f.payload).map((p) => p.offset));
              socket.write(encodeProbeResult(0));
            } else data++;
          }
        });
        socket.on('error', () => undefined);
      });
      for (let i = 0; i < 100 && !warn.some((l) => l.includes('cannot catch up')); i++) {
        clock.advance(100); // the follower reconnects after 100 ms
        await turns(3);
      }
      expect(Math.min(...probed)).toBe(2 * SEGMENT);
      expect(warn.find((l) => l.includes('cannot catch up'))).toMatch(new RegExp(
        `refused: no record of this follower's log \\(0 to ${end}\\) from offset ` +
        `${2 * SEGMENT} on is in the master's log, which starts there: the logs part below ` +
        'it; the follower cannot catch up; start it on an empty directory'));
      expect(warn.some((l) => l.includes('truncated'))).toBe(false);
      expect(data).toBe(0);
      expect(engine.commitLogMaxOffset).toBe(end);
      expect(engine.commitLogMinOffset).toBe(0);
      expect(engine.getMaxOffsetInQueue('Orders', 0)).toBe(queueEnd);
      expect(storeInternals(follower).replication!.snapshot().master?.connected).toBe(false);
    } finally {
      await follower.close();
    }
  });
});
