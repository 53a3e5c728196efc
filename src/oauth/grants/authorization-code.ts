import { grantRevoked } from '../../audit/audit-events.js';
import { hashSecret, newSecret } from '../../crypto/secrets.js';
import type { Approver, ClientRecord, CodeRecord } from '../../store/types.js';
import type { AuthorizationRequest } from '../authorization-request.js';
import type { OAuthContext } from '../context.js';
import { invalidGrant, invalidRequest } from '../errors.js';
import { verifyS256 } from '../pkce.js';
import { checkBoundResource } from '../resource.js';
import { mintTokens, type TokenResponse } from '../token-issuer.js';
import type { Grant } from './grant.js';

/**
 * The owner approved: mint a single-use code bound to everything the request said, and to
 * who approved it when they signed in with a provider. 256 bits of randomness; stored only
 * as its hash; a new grant id ties together everything this approval will ever yield.
 */
export async function issueAuthorizationCode(
  ctx: OAuthContext,
  request: AuthorizationRequest,
  approvedBy?: Approver,
): Promise<{ code: string; grantId: string }> {
  const code = newSecret(ctx.random);
  const grantId = newSecret(ctx.random, 16);
  const now = ctx.clock.now();
  await ctx.store.putCode({
    hash: hashSecret(code),
    clientId: request.clientId,
    grantId,
    redirectUri: request.redirectUri,
    codeChallenge: request.codeChallenge,
    scopes: request.scopes,
    resource: request.resource,
    issuedAt: now,
    expiresAt: now + ctx.tokens.codeTtlMs,
    ...(approvedBy !== undefined ? { approvedBy } : {}),
  });
  return { code, grantId };
}

export interface CodeExchangeParams {
  code?: string;
  redirect_uri?: string;
  code_verifier?: string;
  resource?: string;
}

/** RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6) and resource binding (RFC 8707 §2.2). */
export async function exchangeAuthorizationCode(
  ctx: OAuthContext,
  client: ClientRecord,
  params: CodeExchangeParams,
): Promise<TokenResponse> {
  if (!params.code) throw invalidRequest('The code parameter is required');
  const hash = hashSecret(params.code);
  const now = ctx.clock.now();
  const code = await ctx.store.getCode(hash, now);
  if (!code) throw invalidGrant('The authorization code is unknown or expired; authorize again');

  if (code.consumedAt !== undefined) {
    // RFC 6749 §4.1.2 / RFC 9700 §4.5: a replayed code means it leaked. Revoke what it yielded.
    await revokeReplayedGrant(ctx, code, client);
    throw invalidGrant('The authorization code was already used; tokens issued from it are revoked');
  }
  // These checks do not consume the code: a client that got one wrong may try again.
  if (code.clientId !== client.clientId) throw invalidGrant('The authorization code was issued to another client');
  if (params.redirect_uri !== undefined && params.redirect_uri !== code.redirectUri) {
    throw invalidGrant('redirect_uri does not match the one used at authorization');
  }
  if (!params.code_verifier) throw invalidGrant('code_verifier is required (PKCE)');
  if (!verifyS256(params.code_verifier, code.codeChallenge)) throw invalidGrant('code_verifier does not match the code_challenge');
  checkBoundResource(params.resource, code.resource);

  const issued = mintTokens(ctx, client, code);
  const previous = await ctx.store.consumeCode(hash, now, issued);
  if (!previous) throw invalidGrant('The authorization code is unknown or expired; authorize again');
  if (previous.consumedAt !== undefined) {
    await revokeReplayedGrant(ctx, code, client);
    throw invalidGrant('The authorization code was already used; tokens issued from it are revoked');
  }
  ctx.store.touchClient(client.clientId, now);
  ctx.observer?.tokensIssued('authorization_code');
  return issued.response;
}

/** `presenter`: the client that presented the code, whose name is recorded when the code was its own. */
async function revokeReplayedGrant(ctx: OAuthContext, code: CodeRecord, presenter: ClientRecord): Promise<void> {
  const { grantId, clientId } = code;
  const removed = await ctx.store.revokeGrant(grantId);
  const clientName = presenter.clientId === clientId ? presenter.metadata.client_name : undefined;
  await ctx.audit.record(grantRevoked({ actor: 'system', reason: 'code-replay', clientId, clientName, grantId, person: code.approvedBy }));
  ctx.observer?.grantRevoked('code_replay');
  ctx.logger.warn({ clientId, grantId, removed }, 'authorization code replayed: grant revoked');
}

export const authorizationCodeGrant: Grant<keyof CodeExchangeParams> = {
  type: 'authorization_code',
  parameters: ['code', 'redirect_uri', 'code_verifier', 'resource'],
  handle: exchangeAuthorizationCode,
};
