import { authorizationCodeGrant } from './authorization-code.js';
import type { Grant } from './grant.js';
import { refreshTokenGrant } from './refresh-token.js';

export type { Grant } from './grant.js';

/** Every grant the token endpoint supports, in the order metadata lists them. */
export const GRANTS: readonly Grant[] = [authorizationCodeGrant, refreshTokenGrant];

export const GRANT_TYPES: readonly string[] = GRANTS.map((g) => g.type);

const byType = new Map(GRANTS.map((g) => [g.type, g]));

export const findGrant = (type: string): Grant | undefined => byType.get(type);
