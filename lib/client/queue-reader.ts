/**
 * How a PullConsumer's poll reads its queues: each owned queue has a position (the next offset
 * to read), and a poll reads them in turn, starting one queue further each time, until its batch
 * is full or every queue came up empty. Nothing is prefetched.
 */
import type { BrokerPort, FetchResult, MessageExt, MessageQueue, MessageSelector } from
  '../broker/port.js';
import { fetchRequest } from './fetch-request.js';

export interface Position {
  readonly mq: MessageQueue;
  /** Next offset to read. */
  offset: number;
  /** What was last committed from here (-1: nothing yet). */
  committed: number;
  paused: boolean;
}

const NO_MESSAGES: readonly MessageExt[] = [];

export class QueueReader {
  /** Where the next read starts among the readable queues. */
  private nextQueue = 0;

  constructor(private readonly port: BrokerPort, private readonly batchSize: number,
    private readonly selectorOf: (topic: string) => MessageSelector) {}

  /**
   * Up to a batch of messages from `positions` (those not paused), moving each queue's position
   * past what it gave. An in-process broker answers at once, and so does this: no promise
   * unless a fetch hands one out (a remote broker).
   */
  read(positions: Iterable<Position>): MessageExt[] | Promise<MessageExt[]> {
    const readable = Array.from(positions).filter((p) => !p.paused);
    // A slice, not `[]`: V8 may decide to allocate a literal's arrays in the old generation
    // (see StoredMessage in broker/message.ts).
    return this.readFrom(readable, 0, NO_MESSAGES.slice());
  }

  /** `read` from the `i`th of `positions` on, adding to `out`. */
  private readFrom(positions: Position[], i: number, out: MessageExt[]):
    MessageExt[] | Promise<MessageExt[]> {
    const batch = this.batchSize;
    for (; i < positions.length && out.length < batch; i++) {
      const p = positions[(this.nextQueue + i) % positions.length]!;
      let fetched: FetchResult | Promise<FetchResult>;
      try {
        fetched = this.port.fetch(fetchRequest(p.mq.topic, p.mq.queueId, p.offset,
          batch - out.length, this.selectorOf(p.mq.topic)));
      } catch (err) {
        if (out.length === 0) throw err;
        break;
      }
      if (fetched instanceof Promise) {
        const next = i + 1;
        return fetched.then((result) => {
          take(p, result, out);
          return this.readFrom(positions, next, out);
        }, (err: unknown) => {
          if (out.length === 0) throw err;
          return this.done(positions, out);
        });
      }
      take(p, fetched, out);
    }
    return this.done(positions, out);
  }

  /**
   * The end of a read. A fetch that failed after others succeeded ends it early: positions of
   * the queues read before moved past what `out` holds, so that is handed out now; the failed
   * queue's position stays, and the next poll meets the error again.
   */
  private done(positions: Position[], out: MessageExt[]): MessageExt[] {
    this.nextQueue = positions.length === 0 ? 0 : (this.nextQueue + 1) % positions.length;
    return out;
  }
}

/** A fetch's messages into `out`; the queue's position moves past them. */
function take(p: Position, result: FetchResult, out: MessageExt[]): void {
  p.offset = result.nextBeginOffset;
  for (const message of result.messages) out.push(message);
}
