import { z } from 'zod';
import type { SignInPurpose } from '../../audit/audit-events.js';
import { TokenSigner } from '../../crypto/signed-token.js';
import type { LoginTransaction } from '../../identity/login-provider.js';

/**
 * What a sign-in at a provider needs when the browser comes back: the provider's transaction
 * (state, nonce, PKCE verifier), what the sign-in is for, and for a consent the signed form
 * being decided. It travels in a cookie Latchkey signs (never in memory), so a sign-in
 * started before a restart finishes after it, on any instance. The cookie is HttpOnly and
 * lives minutes; the state it names is claimed once at the callback, so a replayed
 * callback finds it used.
 */
export interface SignInState {
  transaction: LoginTransaction;
  purpose: SignInPurpose;
  /** For 'consent': the signed consent form (itself bound to the browser's CSRF cookie). */
  consent?: string;
  /** For 'consent': the app asking, for the audit log. */
  clientId?: string;
  expiresAt: number;
}

/** How long a sign-in at a provider may take, from the button to the callback. */
export const SIGN_IN_TTL_MS = 15 * 60_000;

const stateSchema = z.object({
  transaction: z.object({
    provider: z.enum(['oidc', 'github']),
    state: z.string(),
    nonce: z.string().optional(),
    codeVerifier: z.string(),
  }),
  purpose: z.enum(['consent', 'admin', 'account']),
  consent: z.string().optional(),
  clientId: z.string().optional(),
  expiresAt: z.number(),
});

export class SignInStates {
  private readonly tokens: TokenSigner;

  constructor(key: Buffer) {
    this.tokens = new TokenSigner(key, 'sign-in-transaction');
  }

  seal(state: SignInState): string {
    return this.tokens.sign(Buffer.from(JSON.stringify(state), 'utf8').toString('base64url'));
  }

  /** The state a cookie holds, if Latchkey signed it and it has not expired. */
  open(cookie: string | undefined, now: number): SignInState | undefined {
    const payload = this.tokens.verify(cookie);
    if (payload === undefined || payload.includes('.')) return undefined;
    try {
      const parsed = stateSchema.safeParse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
      if (!parsed.success || parsed.data.expiresAt <= now) return undefined;
      return parsed.data as SignInState;
    } catch {
      return undefined;
    }
  }
}
