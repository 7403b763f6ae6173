/**
 * A client process's broker port: every call travels to the owner process over one connection
 * (connection.ts, protocol.ts) and resolves with its answer. Group members joined through it get
 * the owner's callbacks as Events. When the connection closes, calls in flight reject with
 * OWNER_UNAVAILABLE (retriable) and `onLost` is told, so a shared port can take over.
 */
import type {
  BatchRequest, BrokerInfo, BrokerPort, BrowseResult, Clock, ConsumeReport, EndTransactionRequest,
  FetchRequest, FetchResult, GroupMember, Logger, MessageExt, MessageQueue, ProducerMember,
  QueryRequest, QueueProgress, ResetTarget, SendBackRequest, SendBackResult, SendRequest,
  SendResult, StoreStats, TopicConfig, TraceEvent,
} from '../broker/port.js';
import { PocketMQError } from '../errors.js';
import { limits } from '../limits.js';
import { Connection, unavailable } from './connection.js';
import { connectOwner } from './owner-socket.js';
import { FrameKind, PROTOCOL_VERSION, ProtocolError, type Frame } from './protocol.js';
import { WindowClient } from './window-client.js';

/** Longest wait a timer holds (Node turns a longer one into 1 ms). */
const MAX_WAIT_MS = 2 ** 31 - 1;

interface Welcome {
  readonly pid: number;
  readonly info: Omit<BrokerInfo, 'clock' | 'logger'>;
}

export class RemotePort implements BrokerPort {
  readonly info: BrokerInfo;
  private readonly members = new Map<number, GroupMember>();
  private readonly producers = new Map<number, ProducerMember>();
  private readonly routes = new Map<string, { config: TopicConfig; at: number }>();
  private closedByUs = false;
  /** The owner's write window, when the owner is another thread of this process. */
  private window: WindowClient | null = null;

  private constructor(private readonly conn: Connection, welcome: Welcome, clock: Clock,
    logger: Logger, private readonly events: { onFrame(f: Frame): void }) {
    this.info = Object.freeze({ ...welcome.info, clock, logger });
    events.onFrame = (frame) => this.event(frame);
  }

  /**
   * Connect to the owner at `address`; rejects when no owner listens there, or it speaks
   * another protocol version (PROTOCOL_ERROR), or it does not answer in time.
   */
  static async connect(address: string, clock: Clock, logger: Logger,
    onLost: () => void): Promise<RemotePort> {
    const socket = await connectOwner(address);
    const events = { onFrame: (_f: Frame): void => undefined };
    let welcomed: ((w: Welcome) => void) | null = null;
    let failed: ((err: Error) => void) | null = null;
    let port: RemotePort | null = null;
    const conn = new Connection(socket, {
      onFrame: (frame) => {
        if (frame.kind === FrameKind.Welcome) welcomed?.(frame.value as Welcome);
        else if (frame.kind === FrameKind.Refused) {
          failed?.(new PocketMQError('PROTOCOL_ERROR', `the owner refused this client: ` +
            `${String((frame.value as { reason?: unknown } | null)?.reason)}`));
        } else events.onFrame(frame);
      },
      onClose: (reason) => {
        failed?.(reason !== null && /protocol version/.test(reason)
          ? new PocketMQError('PROTOCOL_ERROR', `the owner speaks another protocol: ${reason}`)
          : unavailable(`the owner closed the connection${reason === null ? '' : `: ${reason}`}`));
        port?.window?.close();
        if (port !== null && !port.closedByUs) onLost();
      },
    });
    const welcome = await new Promise<Welcome>((resolve, reject) => {
      welcomed = resolve;
      failed = reject;
      const timer = setTimeout(() => reject(unavailable('the owner did not answer in ' +
        `${limits.connectTimeoutMs} ms`)), limits.connectTimeoutMs);
      timer.unref();
      conn.send(FrameKind.Hello, 0, { version: PROTOCOL_VERSION, pid: process.pid });
    }).catch((err: unknown) => {
      conn.close();
      throw err;
    });
    welcomed = null;
    failed = null;
    port = new RemotePort(conn, welcome, clock, logger, events);
    // An owner in another thread of this process shares its write window (write-window.ts).
    if (welcome.pid === process.pid && !welcome.info.tracing) {
      const window = await WindowClient.attach(welcome.info.dir, welcome.info.maxMessageSize);
      if (conn.isOpen) port.window = window;
      else window?.close();
    }
    return port;
  }

  get isClosed(): boolean {
    return !this.conn.isOpen;
  }

  checkOpen(): void {
    if (this.closedByUs) throw new PocketMQError('STORE_CLOSED', 'the store is closed');
    if (!this.conn.isOpen) throw unavailable('the owner process went away');
  }

  /** Close this process's connection (the owner evicts its members). */
  close(): void {
    this.closedByUs = true;
    this.window?.close();
    this.conn.close();
  }

  /**
   * A topic's queues, as the owner last said (kept `limits.topicRouteCacheMs`, as RocketMQ
   * clients keep routes): sends need no round trip for it. Queue counts only grow, so a stale
   * answer only uses fewer queues for a moment.
   */
  topicForSend(topic: string): TopicConfig | Promise<TopicConfig> {
    const known = this.routes.get(topic);
    if (known !== undefined && this.info.clock.now() - known.at < limits.topicRouteCacheMs) {
      return known.config;
    }
    return (this.call('topicForSend', topic) as Promise<TopicConfig>).then((config) => {
      this.routes.set(topic, { config, at: this.info.clock.now() });
      return config;
    });
  }

  async topic(topic: string): Promise<TopicConfig | undefined> {
    return (await this.call('topic', topic) as TopicConfig | null) ?? undefined;
  }

  topics(): Promise<TopicConfig[]> {
    return this.call('topics') as Promise<TopicConfig[]>;
  }

  createTopic(topic: string, queueNums: number): Promise<TopicConfig> {
    return this.call('createTopic', topic, queueNums) as Promise<TopicConfig>;
  }

  /**
   * A send: through the owner's write window when there is one and the message is a plain one
   * (not scheduled), else on the socket, in the tick's binary Sends frame.
   */
  send(request: SendRequest): Promise<SendResult> {
    const { message } = request;
    if (this.window !== null && message.delayTimeLevel === undefined &&
      message.deliverAt === undefined) {
      try {
        const sent = this.window.send(request);
        if (sent !== null) return sent;
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    try {
      this.checkOpen();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.conn.requestSend(request) as Promise<SendResult>;
  }

  sendBatch(request: BatchRequest): Promise<SendResult[]> {
    return this.call('sendBatch', request) as Promise<SendResult[]>;
  }

  sendHalf(request: SendRequest): Promise<SendResult> {
    return this.call('sendHalf', request) as Promise<SendResult>;
  }

  async endTransaction(request: EndTransactionRequest): Promise<void> {
    await this.call('endTransaction', request);
  }

  async registerProducer(producer: ProducerMember): Promise<string> {
    const { producerId, ref } = await this.call('registerProducer', { group: producer.group,
      instanceName: producer.instanceName }) as { producerId: string; ref: number };
    this.producers.set(ref, producer);
    return producerId;
  }

  async unregisterProducer(group: string, producerId: string): Promise<void> {
    for (const [ref, p] of this.producers) if (p.group === group) this.producers.delete(ref);
    await this.call('unregisterProducer', group, producerId);
  }

  async join(member: GroupMember): Promise<string> {
    const { clientId, ref } = await this.call('join', { group: member.group,
      instanceName: member.instanceName, messageModel: member.messageModel,
      topics: member.topics(), preferredClientId: member.preferredClientId }) as
      { clientId: string; ref: number };
    this.members.set(ref, member);
    return clientId;
  }

  async leave(group: string, clientId: string): Promise<void> {
    for (const [ref, m] of this.members) if (m.group === group) this.members.delete(ref);
    await this.call('leave', group, clientId);
  }

  clientIds(group: string): Promise<string[]> {
    return this.call('clientIds', group) as Promise<string[]>;
  }

  async lockQueue(group: string, mq: MessageQueue, clientId: string,
    signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted === true) return false;
    return await this.callWith(signal, 'lockQueue', group, mq, clientId) as boolean;
  }

  unlockQueue(group: string, mq: MessageQueue, clientId: string): void {
    this.call('unlockQueue', group, mq, clientId).catch(() => undefined);
  }

  fetch(request: FetchRequest): Promise<FetchResult> {
    const { selector } = request;
    return this.call('fetch', { ...request,
      selector: { type: selector.type, expression: selector.expression } }) as
      Promise<FetchResult>;
  }

  async waitForMessage(mq: MessageQueue, offset: number, timeoutMs: number,
    signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted === true) return false;
    return await this.callWith(signal, 'waitForMessage', mq, offset,
      Math.min(timeoutMs, MAX_WAIT_MS)) as boolean;
  }

  minOffset(mq: MessageQueue): Promise<number> {
    return this.call('minOffset', mq) as Promise<number>;
  }

  maxOffset(mq: MessageQueue): Promise<number> {
    return this.call('maxOffset', mq) as Promise<number>;
  }

  searchOffset(mq: MessageQueue, timestampMs: number): Promise<number> {
    return this.call('searchOffset', mq, timestampMs) as Promise<number>;
  }

  commitOffset(group: string, mq: MessageQueue, offset: number): void {
    this.call('commitOffset', group, mq, offset).catch((err: unknown) => this.info.logger.warn(
      `pocketmq: an offset commit did not reach the owner: ${String(err)}`));
  }

  queryOffset(group: string, mq: MessageQueue): Promise<number> {
    return this.call('queryOffset', group, mq) as Promise<number>;
  }

  async persistOffsets(): Promise<void> {
    await this.call('persistOffsets');
  }

  sendBack(request: SendBackRequest): Promise<SendBackResult> {
    return this.call('sendBack', request) as Promise<SendBackResult>;
  }

  deadLetter(group: string, clientId: string, messages: readonly MessageExt[]):
    Promise<MessageExt[]> {
    return this.call('deadLetter', group, clientId, messages) as Promise<MessageExt[]>;
  }

  cancelRedeliveries(group: string, clientId: string, mq: MessageQueue): void {
    this.call('cancelRedeliveries', group, clientId, mq).catch(() => undefined);
  }

  cancelScheduled(msgId: string): Promise<boolean> {
    return this.call('cancelScheduled', msgId) as Promise<boolean>;
  }

  reportConsumed(report: ConsumeReport): void {
    this.call('reportConsumed', report).catch(() => undefined);
  }

  viewMessage(msgId: unknown): Promise<MessageExt | null> {
    return this.call('viewMessage', msgId) as Promise<MessageExt | null>;
  }

  queryMessage(request: QueryRequest): Promise<MessageExt[]> {
    return this.call('queryMessage', request) as Promise<MessageExt[]>;
  }

  queryTrace(msgId: string): Promise<TraceEvent[]> {
    return this.call('queryTrace', msgId) as Promise<TraceEvent[]>;
  }

  consumerProgress(group: string): Promise<QueueProgress[]> {
    return this.call('consumerProgress', group) as Promise<QueueProgress[]>;
  }

  browse(topic: string, queueId: number, offset: number, maxNum: number):
    Promise<BrowseResult> {
    return this.call('browse', topic, queueId, offset, maxNum) as Promise<BrowseResult>;
  }

  stats(): Promise<StoreStats> {
    return this.call('stats') as Promise<StoreStats>;
  }

  resetConsumerOffset(group: string, topic: string, to: ResetTarget):
    Promise<{ queueId: number; before: number; after: number }[]> {
    return this.call('resetConsumerOffset', group, topic, to) as
      Promise<{ queueId: number; before: number; after: number }[]>;
  }

  resendDeadLetters(group: string, maxNum: number):
    Promise<{ resent: number; remaining: number }> {
    return this.call('resendDeadLetters', group, maxNum) as
      Promise<{ resent: number; remaining: number }>;
  }

  private call(method: string, ...args: unknown[]): Promise<unknown> {
    return this.callWith(undefined, method, ...args);
  }

  private callWith(signal: AbortSignal | undefined, method: string,
    ...args: unknown[]): Promise<unknown> {
    try {
      this.checkOpen();
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return this.conn.request(method, args, signal);
  }

  /** The owner asks a transactional producer of this process about a half message. */
  private check(ref: number, [checkId, message]: unknown[]): void {
    const producer = this.producers.get(ref);
    const asked = producer === undefined ? Promise.resolve('UNKNOWN')
      : producer.checkLocalTransaction(message as MessageExt);
    asked.catch(() => 'UNKNOWN').then((state) => this.call('answerCheck', checkId, state))
      .catch(() => undefined);
  }

  /** An owner's callback to a member joined through this port. */
  private event(frame: Frame): void {
    if (frame.kind !== FrameKind.Event) {
      throw new ProtocolError(`unexpected frame kind ${frame.kind} from the owner`);
    }
    const { event, args } = (frame.value ?? {}) as { event?: unknown; args?: unknown[] };
    if (event === 'check') {
      this.check(frame.id, args ?? []);
      return;
    }
    const member = this.members.get(frame.id);
    if (member === undefined) return; // left meanwhile
    const [mq, messages] = (args ?? []) as [MessageQueue, MessageExt[]];
    if (event === 'change') member.onChange();
    else if (event === 'redeliver') member.redeliver(mq, messages);
    else if (event === 'deadLettered') member.deadLettered(mq, messages);
  }
}
