/**
 * Faults for retry tests: the simulated disk refusing the first creation of a file an append
 * needs, with a chosen errno.
 */
import type { FaultCode, SimBackend } from './sim-backend.js';

/** Fail the first open of a consume-queue file of topic `t` with `code`, once. */
export function failFirstQueueFile(sim: SimBackend, code: FaultCode): { opens: string[] } {
  const opens: string[] = [];
  let armed = true;
  sim.failWhen((e) => {
    if (e.op !== 'open' || !e.path.includes('/consumequeue/t/')) return null;
    opens.push(e.path);
    if (!armed) return null;
    armed = false;
    return code;
  });
  return { opens };
}
