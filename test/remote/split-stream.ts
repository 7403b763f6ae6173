/** The frames a FrameReader makes of `bytes` pushed in pieces cut at `cuts` (then the rest). */
import { FrameReader, type Frame } from '../../lib/remote/protocol.js';

export function readSplit(bytes: Buffer, cuts: readonly number[]): Frame[] {
  const reader = new FrameReader();
  const out: Frame[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    const end = Math.min(bytes.length, at + cut);
    out.push(...reader.push(bytes.subarray(at, end)));
    at = end;
  }
  return out;
}
