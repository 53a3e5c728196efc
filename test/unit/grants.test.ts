import { grantTests } from './grants.js';
import { makeContext } from './helpers.js';

grantTests('a real FileStore', () => makeContext());
