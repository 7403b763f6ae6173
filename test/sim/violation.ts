/** A broken promise of the store, as the simulator's oracle finds it. */
export class Violation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Violation';
  }
}

export function violated(message: string): never {
  throw new Violation(message);
}
