import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Store } from '../store/types.js';
import type { RandomSource } from './secrets.js';

/** What the protocol rules need from the outside world; tests pass their own clock and randomness. */
export interface OAuthContext {
  config: Config;
  store: Store;
  clock: Clock;
  random: RandomSource;
  logger: Logger;
}
