import type { Clock } from '../../src/clock.js';

/** A clock that moves only when the test says so; time travels through lifetimes without sleeping. */
export class FakeClock implements Clock {
  constructor(public ms: number = Date.now()) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
