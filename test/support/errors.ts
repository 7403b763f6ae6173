/**
 * Catching the coded errors tests expect: each helper fails the test when nothing is thrown
 * or the error is not a PocketMQError.
 */
import { expect } from 'vitest';
import { PocketMQError } from '../../lib/errors.js';

/** The PocketMQError `fn` throws. */
export function errorOf(fn: () => unknown): PocketMQError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    return err as PocketMQError;
  }
  throw new Error('expected a PocketMQError');
}

/** The PocketMQError `promise` rejects with. */
export async function rejection(promise: Promise<unknown>): Promise<PocketMQError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(PocketMQError);
    return err as PocketMQError;
  }
  throw new Error('expected a rejection');
}
