/** How a failed request travels between an owner and its clients (connection.ts). */
import { PocketMQError, type ErrorCode, type ErrorFields } from '../errors.js';

/** How a failed request travels: enough to rebuild the PocketMQError on the other side. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly fields: Omit<ErrorFields, 'cause'>;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof PocketMQError) {
    const { topic, offset, limit, actual, property } = err;
    return { code: err.code, message: err.message,
      fields: { topic, offset, limit, actual, property, retriable: err.retriable } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'ASSERTION_FAILED', message: `owner: ${message}`, fields: {} };
}

export function fromWireError(value: unknown): PocketMQError {
  const w = (value ?? {}) as Partial<WireError>;
  const fields = (w.fields ?? {}) as ErrorFields;
  return new PocketMQError(w.code ?? 'PROTOCOL_ERROR', String(w.message ?? 'unknown failure'),
    fields);
}
