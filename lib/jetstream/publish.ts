/**
 * One message into one queue of a topic's stream, as producers and dead-letter moves store it:
 * sized against the servers' `max_payload`, published with its `Nats-Msg-Id`, and tried again
 * through a leader election with the same id, so the stream stores it once. It resolves only
 * with the stream's acknowledgement, which JetStream sends once the stream's quorum (two of
 * three replicas) stored the message.
 */
import { PocketMQError } from '../index.js';
import { encodeHeaders, headerBytes, queueSubject, streamOf, type Origin } from './codec.js';
import type { Connection } from './connection.js';
import type { OutgoingMessage } from './public-gaps.js';

export interface Stored {
  readonly sequence: number;
  /** The stream had this message id already (a retry of a send it stored). */
  readonly duplicate: boolean;
}

export interface PublishRequest {
  readonly message: OutgoingMessage;
  readonly queueId: number;
  /** The `Nats-Msg-Id`: the same for every attempt of one send. */
  readonly natsMsgId: string;
  readonly bornMs: number;
  readonly origin?: Origin | undefined;
  /** Try again through retriable failures (else one attempt). */
  readonly retry: boolean;
}

export async function publishMessage(connection: Connection,
  request: PublishRequest): Promise<Stored> {
  const { message } = request;
  const topic = message.topic;
  const headers = encodeHeaders(connection.newHeaders(), message, request.bornMs,
    request.origin);
  const max = Math.min(connection.options.maxMessageSize,
    connection.maxPayload - headerBytes(headers));
  if (message.body.length > max) {
    throw new PocketMQError('MESSAGE_TOO_LARGE', `body is ${message.body.length} bytes; at ` +
      `most ${max} fit (maxMessageSize ${connection.options.maxMessageSize}, the servers' ` +
      `max_payload ${connection.maxPayload} less the headers)`,
    { limit: max, actual: message.body.length, topic, property: 'body' });
  }
  const subject = queueSubject(topic, request.queueId);
  const attempt = async (): Promise<Stored> => {
    const ack = await connection.js.publish(subject, message.body, { headers,
      msgID: request.natsMsgId, expect: { streamName: streamOf(topic) },
      timeout: connection.options.requestTimeoutMs });
    return { sequence: ack.seq, duplicate: ack.duplicate };
  };
  if (request.retry) return connection.retrying(`send to ${topic}`, attempt, topic);
  try {
    return await attempt();
  } catch (err) {
    throw connection.translate(err, `send to ${topic}`, topic);
  }
}
