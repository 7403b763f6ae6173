/**
 * What keeps the process alive while a consumer works, as a listening server or a kafkajs
 * consumer does: a started push consumer until it shuts down, a pending `poll` or `for await`
 * until it returns. Everything else in pocketmq (flush, retention, long polling) runs on unref'd
 * timers, so a script whose only work is a consumer would otherwise end in the middle of an
 * `await` with exit code 13 and no output, and a worker process would exit before it wrote its
 * offsets.
 */

/** Longest delay a Node timer takes; the timer never needs to fire. */
const NEVER_MS = 2 ** 31 - 1;

/**
 * Hold the process alive (a ref'd timer that never fires) until the returned function is
 * called; later calls of it do nothing.
 */
export function holdProcess(): () => void {
  let handle: NodeJS.Timeout | null = setInterval(() => undefined, NEVER_MS);
  return () => {
    if (handle === null) return;
    clearInterval(handle);
    handle = null;
  };
}
