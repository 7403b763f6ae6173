/**
 * Event-loop turns for the simulator: the simulated disk finishes a flush or an allocation in one
 * setImmediate, so the simulation waits in turns, never in milliseconds, and a promise that does
 * not settle within a bound of turns is a hang, reported as such.
 */
import { Violation } from './violation.js';

/** Turns a close or a settle may take before it counts as hung. */
export const MAX_TURNS = 2000;

// Captured at load, as the simulated disk does, so fake timers could not stall the simulator.
const realSetImmediate = globalThis.setImmediate;

export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => realSetImmediate(resolve));
}

/** `work`'s outcome, or a Violation when it is still pending after MAX_TURNS turns. */
export async function bounded<T>(work: Promise<T>, what: string): Promise<T> {
  let settled = false;
  const watched = work.finally(() => {
    settled = true;
  });
  watched.catch(() => undefined);
  for (let i = 0; i < MAX_TURNS && !settled; i++) await turns(1);
  if (!settled) throw new Violation(`${what} still pending after ${MAX_TURNS} event-loop turns`);
  return watched;
}

/** A close expected to fail (its process is dead): wait for it, ignore its error, not a hang. */
export async function closeQuietly(work: Promise<void>): Promise<void> {
  try {
    await bounded(work, 'close of a dead store');
  } catch (err) {
    if (err instanceof Violation) throw err;
  }
}
