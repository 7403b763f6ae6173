/**
 * The owner's side of several processes on one store: it serves its broker's port (port.ts) on
 * the owner socket (owner-socket.ts) to the store's client processes.
 *
 * A connection starts with a Hello (protocol version, pid) answered by a Welcome (the broker's
 * info); another version is answered by Refused and closed. Then each Request names a port
 * method and its arguments; its Result or Failure follows, in any order. Members that join a
 * group through a connection are proxies: the broker's callbacks (rebalance, redeliveries)
 * travel to the client as Events. When a connection closes, however its process ended, its
 * members are evicted: they leave their groups and their queue locks go to the others.
 */
import type net from 'node:net';
import type { Broker } from '../broker/broker.js';
import {
  normalizeMessage, type Awaitable, type GroupMember, type LocalTransactionState,
  type MessageExt, type MessageQueue, type ProducerMember, type SendRequest, type SendResult,
} from '../broker/port.js';
import { PocketMQError } from '../errors.js';
import type { Logger } from '../store/options.js';
import { Connection, toWireError } from './connection.js';
import { closeOwner, listenOwner, ownerSocketAddress } from './owner-socket.js';
import { FrameKind, PROTOCOL_VERSION, type Frame } from './protocol.js';
import type { SendEntry } from './send-codec.js';

type Handler = (session: Session, args: unknown[], signal: AbortSignal) => unknown;

/** The port methods a client may call, each from its wire arguments. */
const HANDLERS: Readonly<Record<string, Handler>> = {
  topicForSend: (s, [topic]) => s.broker.topicForSend(topic as string),
  topic: (s, [topic]) => s.broker.topic(topic as string) ?? null,
  topics: (s) => s.broker.topics(),
  createTopic: (s, [topic, n]) => s.broker.createTopic(topic as string, n as number),
  send: (s, [request]) => s.broker.send(sendRequest(request)),
  sendBatch: (s, [request]) => {
    const r = request as { messages?: unknown };
    const messages = Array.isArray(r.messages) ? r.messages.map((m) => normalizeMessage(m)) : [];
    return s.broker.sendBatch({ ...(r as object), messages } as never);
  },
  sendHalf: (s, [request]) => s.broker.sendHalf(sendRequest(request)),
  endTransaction: (s, [request]) => s.broker.endTransaction(request as never),
  registerProducer: (s, [producer]) => s.registerProducer(producer),
  unregisterProducer: (s, [group, producerId]) =>
    s.unregisterProducer(group as string, producerId as string),
  answerCheck: (s, [checkId, state]) => s.answerCheck(checkId as number, state),
  join: (s, [member]) => s.join(member),
  leave: (s, [group, clientId]) => s.leave(group as string, clientId as string),
  clientIds: (s, [group]) => s.broker.clientIds(group as string),
  lockQueue: (s, [group, mq, clientId], signal) =>
    s.broker.lockQueue(group as string, queue(mq), clientId as string, signal),
  unlockQueue: (s, [group, mq, clientId]) =>
    s.broker.unlockQueue(group as string, queue(mq), clientId as string),
  fetch: (s, [request]) => s.broker.fetch(request as never),
  waitForMessage: (s, [mq, offset, timeoutMs], signal) =>
    s.broker.waitForMessage(queue(mq), offset as number, timeoutMs as number, signal),
  minOffset: (s, [mq]) => s.broker.minOffset(queue(mq)),
  maxOffset: (s, [mq]) => s.broker.maxOffset(queue(mq)),
  searchOffset: (s, [mq, ts]) => s.broker.searchOffset(queue(mq), ts as number),
  commitOffset: (s, [group, mq, offset]) =>
    s.broker.commitOffset(group as string, queue(mq), offset as number),
  queryOffset: (s, [group, mq]) => s.broker.queryOffset(group as string, queue(mq)),
  persistOffsets: (s) => s.broker.persistOffsets(),
  sendBack: (s, [request]) => s.broker.sendBack(request as never),
  deadLetter: (s, [group, clientId, messages]) =>
    s.broker.deadLetter(group as string, clientId as string, messages as MessageExt[]),
  cancelRedeliveries: (s, [group, clientId, mq]) =>
    s.broker.cancelRedeliveries(group as string, clientId as string, queue(mq)),
  cancelScheduled: (s, [msgId]) => s.broker.cancelScheduled(msgId as string),
  reportConsumed: (s, [report]) => s.broker.reportConsumed(report as never),
  viewMessage: (s, [msgId]) => s.broker.viewMessage(msgId),
  queryMessage: (s, [request]) => s.broker.queryMessage(request as never),
  queryTrace: (s, [msgId]) => s.broker.queryTrace(msgId as string),
  consumerProgress: (s, [group]) => s.broker.consumerProgress(group as string),
  browse: (s, [topic, queueId, offset, maxNum]) => s.broker.browse(topic as string,
    queueId as number, offset as number, maxNum as number),
  stats: (s) => s.broker.stats(),
  resetConsumerOffset: (s, [group, topic, to]) =>
    s.broker.resetConsumerOffset(group as string, topic as string, to as never),
  resendDeadLetters: (s, [group, maxNum]) =>
    s.broker.resendDeadLetters(group as string, maxNum as number),
};

/** Methods a client may cancel (their waits take an AbortSignal). */
const SIGNALLED = new Set(['lockQueue', 'waitForMessage']);
const NEVER = new AbortController().signal;

function queue(mq: unknown): MessageQueue {
  const { topic, queueId } = (mq ?? {}) as Partial<MessageQueue>;
  if (typeof topic !== 'string' || !Number.isInteger(queueId)) {
    throw new PocketMQError('INVALID_OPTION', 'a queue is { topic, queueId }',
      { property: 'queue' });
  }
  return { topic, queueId: queueId! };
}

function sendRequest(request: unknown): never {
  const r = (request ?? {}) as { message?: unknown };
  // The client checked the message; the owner checks it again: it trusts no peer.
  return { ...(r as object), message: normalizeMessage(r.message) } as never;
}

/** One client connection. */
class Session {
  private welcomed = false;
  private readonly members = new Map<number, { group: string; clientId: string }>();
  private readonly aborts = new Map<number, AbortController>();
  private readonly producers = new Map<number, { group: string; producerId: string }>();
  private readonly checks = new Map<number, (state: LocalTransactionState) => void>();
  private nextCheck = 1;
  readonly conn: Connection;

  constructor(socket: net.Socket, readonly broker: Broker, private readonly logger: Logger,
    private readonly onClosed: (session: Session) => void) {
    this.conn = new Connection(socket, {
      onFrame: (frame) => this.frame(frame),
      onClose: (reason) => this.closed(reason),
      // A peer that never said a matching Hello is told why before the close, whatever its
      // first bytes were (a frame of another version does not even decode).
      onBroken: () => {
        if (!this.welcomed) this.refuse();
      },
    });
  }

  join(member: unknown): { clientId: string; ref: number } {
    const m = (member ?? {}) as Record<string, unknown>;
    const ref = this.members.size === 0 ? 1 : Math.max(...this.members.keys()) + 1;
    const topics = Array.isArray(m.topics) ? m.topics.filter((t) => typeof t === 'string') : [];
    const event = (name: string, args: unknown[] = []): void =>
      this.conn.send(FrameKind.Event, ref, { event: name, args });
    const proxy: GroupMember = {
      group: m.group as string, instanceName: m.instanceName as string,
      messageModel: m.messageModel === 'BROADCASTING' ? 'BROADCASTING' : 'CLUSTERING',
      preferredClientId: typeof m.preferredClientId === 'string' ? m.preferredClientId
        : undefined,
      topics: () => topics as string[],
      onChange: () => event('change'),
      // The client hands over its offsets as it commits them: nothing is held here.
      flushOffsets: () => undefined,
      redeliver: (mq, messages) => event('redeliver', [mq, messages]),
      deadLettered: (mq, messages) => event('deadLettered', [mq, messages]),
    };
    const clientId = this.broker.join(proxy);
    this.members.set(ref, { group: proxy.group, clientId });
    return { clientId, ref };
  }

  /** A client's transactional producer: check-backs travel to it as 'check' events. */
  registerProducer(producer: unknown): { producerId: string; ref: number } {
    const p = (producer ?? {}) as Record<string, unknown>;
    const ref = this.producers.size === 0 ? 1 : Math.max(...this.producers.keys()) + 1;
    const proxy: ProducerMember = {
      group: p.group as string, instanceName: p.instanceName as string,
      checkLocalTransaction: (message) => new Promise((resolve) => {
        const checkId = this.nextCheck++;
        this.checks.set(checkId, resolve);
        this.conn.send(FrameKind.Event, ref, { event: 'check', args: [checkId, message] });
      }),
    };
    const producerId = this.broker.registerProducer(proxy);
    this.producers.set(ref, { group: proxy.group, producerId });
    return { producerId, ref };
  }

  unregisterProducer(group: string, producerId: string): Awaitable<void> {
    for (const [ref, p] of this.producers) {
      if (p.group === group && p.producerId === producerId) this.producers.delete(ref);
    }
    return this.broker.unregisterProducer(group, producerId);
  }

  answerCheck(checkId: number, state: unknown): void {
    const resolve = this.checks.get(checkId);
    this.checks.delete(checkId);
    resolve?.(state === 'COMMIT_MESSAGE' || state === 'ROLLBACK_MESSAGE' ? state : 'UNKNOWN');
  }

  leave(group: string, clientId: string): void {
    for (const [ref, m] of this.members) {
      if (m.group === group && m.clientId === clientId) this.members.delete(ref);
    }
    this.broker.leave(group, clientId);
  }

  private refuse(): void {
    this.conn.send(FrameKind.Refused, 0, { version: PROTOCOL_VERSION,
      reason: `this owner speaks protocol version ${PROTOCOL_VERSION}` });
  }

  private frame(frame: Frame): void {
    if (!this.welcomed) {
      const hello = frame.value as { version?: unknown } | null;
      if (frame.kind !== FrameKind.Hello || hello?.version !== PROTOCOL_VERSION) {
        this.refuse();
        this.conn.close('a connection that did not start with a matching Hello');
        return;
      }
      this.welcomed = true;
      const { info } = this.broker;
      this.conn.send(FrameKind.Welcome, 0, { pid: process.pid, info: { dir: info.dir,
        readOnly: info.readOnly, maxMessageSize: info.maxMessageSize,
        defaultTopicQueueNums: info.defaultTopicQueueNums, tracing: info.tracing } });
      return;
    }
    if (frame.kind === FrameKind.Cancel) {
      this.aborts.get(frame.id)?.abort();
      return;
    }
    if (frame.kind === FrameKind.Sends) {
      for (const { id, request } of frame.value as SendEntry[]) this.send(id, request);
      return;
    }
    if (frame.kind !== FrameKind.Request) {
      this.conn.close(`unexpected frame kind ${frame.kind} from a client`);
      return;
    }
    this.request(frame.id, frame.value as { method?: unknown; args?: unknown });
  }

  private request(id: number, value: { method?: unknown; args?: unknown } | null): void {
    const method = typeof value?.method === 'string' ? value.method : '';
    const handler = Object.hasOwn(HANDLERS, method) ? HANDLERS[method] : undefined;
    if (handler === undefined || !Array.isArray(value?.args)) {
      this.conn.close(`unknown request ${JSON.stringify(method).slice(0, 64)}`);
      return;
    }
    // Only the waits take a signal: a controller for each request would cost every call.
    const controller = SIGNALLED.has(method) ? new AbortController() : null;
    if (controller !== null) this.aborts.set(id, controller);
    let result: unknown;
    try {
      result = handler(this, value.args as unknown[], controller?.signal ?? NEVER);
    } catch (err) {
      result = Promise.reject(err as Error);
    }
    Promise.resolve(result).then(
      (v) => this.conn.send(FrameKind.Result, id, { value: v ?? null }),
      (err: unknown) => this.conn.send(FrameKind.Failure, id, toWireError(err)),
    ).catch((err: unknown) => this.conn.close(`cannot answer: ${String(err)}`))
      .finally(() => {
        if (controller !== null) this.aborts.delete(id);
      });
  }

  /** A send of a Sends frame; its outcome goes in this tick's SendResults frame. */
  private send(id: number, request: SendRequest): void {
    let result: Awaitable<SendResult>;
    try {
      result = this.broker.send(sendRequest(request));
    } catch (err) {
      this.conn.answerSend(id, { failure: toWireError(err) });
      return;
    }
    if (!(result instanceof Promise)) {
      this.conn.answerSend(id, { result });
      return;
    }
    result.then((r) => this.conn.answerSend(id, { result: r }),
      (err: unknown) => this.conn.answerSend(id, { failure: toWireError(err) }))
      .catch((err: unknown) => this.conn.close(`cannot answer: ${String(err)}`));
  }

  private closed(reason: string | null): void {
    if (reason !== null) this.logger.warn(`pocketmq: closed a client connection: ${reason}`);
    for (const controller of this.aborts.values()) controller.abort();
    this.aborts.clear();
    for (const { group, clientId } of this.members.values()) this.broker.evict(group, clientId);
    this.members.clear();
    for (const resolve of this.checks.values()) resolve('UNKNOWN');
    this.checks.clear();
    for (const { group, producerId } of this.producers.values()) {
      void Promise.resolve(this.broker.unregisterProducer(group, producerId))
        .catch(() => undefined);
    }
    this.producers.clear();
    this.onClosed(this);
  }
}

export class OwnerServer {
  private readonly sessions = new Set<Session>();

  private constructor(private readonly server: net.Server, private readonly address: string) {}

  /** Serve `broker` on the owner socket of its directory. */
  static async start(broker: Broker, logger: Logger): Promise<OwnerServer> {
    const address = ownerSocketAddress(broker.info.dir);
    let owner: OwnerServer | null = null;
    const server = await listenOwner(address, (socket) => {
      const session = new Session(socket, broker, logger, (s) => owner?.sessions.delete(s));
      owner?.sessions.add(session);
    });
    owner = new OwnerServer(server, address);
    return owner;
  }

  get clients(): number {
    return this.sessions.size;
  }

  /** Stop serving: clients see their connection close (and may take over). */
  async close(): Promise<void> {
    for (const session of [...this.sessions]) session.conn.close();
    await closeOwner(this.server, this.address);
  }
}
