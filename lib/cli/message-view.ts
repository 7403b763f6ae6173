/**
 * How a stored message is shown: as a table row with a body preview (text when the body is
 * printable UTF-8, hex otherwise), as a block of fields, or as JSON with the whole body (UTF-8
 * or base64, and a `bodyEncoding` field saying which).
 */
import type { MessageExt } from '../broker/message.js';
import { formatBytes, formatTime, renderPairs, type Column } from './output.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Control characters other than tab, newline and carriage return. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** The body as text if it is valid UTF-8 without control characters, else null. */
export function bodyText(body: Buffer): string | null {
  try {
    const text = utf8.decode(body);
    return CONTROL.test(text) ? null : text;
  } catch {
    return null;
  }
}

/** At most `maxChars` of the body on one line: text with \n escaped, or `0x` and hex. */
export function bodyPreview(body: Buffer, maxChars: number): string {
  const text = bodyText(body);
  if (text !== null) {
    const line = text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r')
      .replace(/\t/g, '\\t');
    const chars = [...line];
    return chars.length <= maxChars ? line : `${chars.slice(0, maxChars - 1).join('')}…`;
  }
  const bytes = Math.max(1, Math.floor((maxChars - 3) / 2));
  const hex = body.subarray(0, bytes).toString('hex');
  return body.length <= bytes ? `0x${hex}` : `0x${hex}…`;
}

export type BodyEncoding = 'utf8' | 'base64';

/** A message as plain JSON: every field, the body whole. */
export function messageJson(m: MessageExt): Record<string, unknown> {
  const text = bodyText(m.body);
  const encoding: BodyEncoding = text === null ? 'base64' : 'utf8';
  return {
    msgId: m.msgId,
    topic: m.topic,
    queueId: m.queueId,
    queueOffset: m.queueOffset,
    commitLogOffset: m.commitLogOffset,
    storeSize: m.storeSize,
    tags: m.tags ?? null,
    keys: m.keys,
    properties: m.properties,
    bornTimestamp: m.bornTimestamp,
    storeTimestamp: m.storeTimestamp,
    reconsumeTimes: m.reconsumeTimes,
    bodyEncoding: encoding,
    body: text ?? m.body.toString('base64'),
  };
}

export const MESSAGE_COLUMNS: readonly Column[] = [
  { header: 'queue', align: 'right' },
  { header: 'offset', align: 'right' },
  { header: 'msgId' },
  { header: 'tags' },
  { header: 'keys' },
  { header: 'stored' },
  { header: 'size', align: 'right' },
  { header: 'body' },
];

/** Longest tags or keys cell; longer ones end in `…`. */
const LABEL_CHARS = 24;
export const BODY_PREVIEW_CHARS = 48;

function clip(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** The cells of MESSAGE_COLUMNS for one message. */
export function messageRow(m: MessageExt): string[] {
  return [
    String(m.queueId),
    String(m.queueOffset),
    m.msgId,
    clip(m.tags ?? '-', LABEL_CHARS),
    clip(m.keys.length === 0 ? '-' : m.keys.join(','), LABEL_CHARS),
    formatTime(m.storeTimestamp),
    formatBytes(m.body.length),
    bodyPreview(m.body, BODY_PREVIEW_CHARS),
  ];
}

/** Largest body printed whole by `query-by-id`; longer ones are cut with a note. */
const FULL_BODY_CHARS = 64 * 1024;

/** One message, field by field, with the whole body (text) or a hex preview. */
export function renderMessage(m: MessageExt): string {
  const props = Object.entries(m.properties);
  const text = bodyText(m.body);
  const pairs: [string, string][] = [
    ['msgId', m.msgId],
    ['topic', m.topic],
    ['queue', String(m.queueId)],
    ['queue offset', String(m.queueOffset)],
    ['commit-log offset', String(m.commitLogOffset)],
    ['tags', m.tags ?? '-'],
    ['keys', m.keys.length === 0 ? '-' : m.keys.join(' ')],
    ['properties', props.length === 0 ? '-'
      : props.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')],
    ['born', formatTime(m.bornTimestamp)],
    ['stored', formatTime(m.storeTimestamp)],
    ['reconsume times', String(m.reconsumeTimes)],
    ['stored size', formatBytes(m.storeSize)],
    ['body size', formatBytes(m.body.length)],
  ];
  let body: string;
  if (text === null) body = `(binary) ${bodyPreview(m.body, 2 * 64 + 3)}`;
  else if (text.length > FULL_BODY_CHARS) {
    body = `${text.slice(0, FULL_BODY_CHARS)}\n… (${text.length - FULL_BODY_CHARS} more ` +
      'characters; --json prints it whole)';
  } else body = text;
  return `${renderPairs(pairs)}\n${body}\n`;
}
