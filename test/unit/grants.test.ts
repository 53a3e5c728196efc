import { grantTests } from './grants.js';
import { makeContext } from '../helpers/unit-context.js';

grantTests('a real FileStore', () => makeContext());
