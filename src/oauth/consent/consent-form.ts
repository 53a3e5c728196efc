import { z } from 'zod';
import { TokenSigner } from '../../crypto/signed-token.js';
import { approverSchema } from '../../store/records.js';
import type { Approver } from '../../store/types.js';
import type { AuthorizationRequest } from '../authorization-request.js';
import { hashSecret, newSecret, safeEqual, type RandomSource } from '../../crypto/secrets.js';

/**
 * A pending consent travels in the consent form itself, signed with a key kept in the data
 * directory. Nothing about it lives in memory, so a page left open across a daemon restart
 * still works. The payload is bound to a CSRF cookie: a form can only be posted by the
 * browser that was shown it.
 */
export interface PendingConsent {
  request: AuthorizationRequest;
  /** Identifies this consent for per-request PIN attempt limits. */
  id: string;
  /** Hash of the browser's CSRF cookie. */
  csrf: string;
  expiresAt: number;
  /**
   * Who signed in with a provider to decide on this request (issue 12). Only a form Latchkey
   * signed after a successful sign-in carries it; Approve then needs no PIN.
   */
  approver?: Approver;
}

const pendingSchema = z.object({
  request: z.object({
    clientId: z.string(),
    redirectUri: z.string(),
    state: z.string().optional(),
    codeChallenge: z.string(),
    scopes: z.array(z.string()),
    resource: z.string(),
  }),
  id: z.string(),
  csrf: z.string(),
  expiresAt: z.number(),
  approver: approverSchema.optional(),
});

export type ConsentCheck =
  | { ok: true; pending: PendingConsent }
  | { ok: false; reason: 'malformed' | 'expired' | 'csrf' };

export class ConsentSigner {
  private readonly tokens: TokenSigner;

  constructor(
    key: Buffer,
    private readonly random: RandomSource,
    /** How long an open consent page stays usable. */
    private readonly ttlMs: number,
  ) {
    this.tokens = new TokenSigner(key, 'consent-form');
  }

  /** A fresh value for the CSRF cookie. */
  newCsrfCookie(): string {
    return newSecret(this.random);
  }

  sign(request: AuthorizationRequest, csrfCookie: string, now: number): string {
    return this.seal({
      request,
      id: newSecret(this.random, 16),
      csrf: hashSecret(csrfCookie),
      expiresAt: now + this.ttlMs,
    });
  }

  /**
   * The same pending consent (same id, browser and expiry, so it is still used once and its
   * PIN limits still hold) decided by a person who just signed in.
   */
  signFor(pending: PendingConsent, approver: Approver): string {
    return this.seal({ ...pending, approver });
  }

  private seal(pending: PendingConsent): string {
    return this.tokens.sign(Buffer.from(JSON.stringify(pending), 'utf8').toString('base64url'));
  }

  verify(token: string | undefined, csrfCookie: string | undefined, now: number): ConsentCheck {
    const payload = this.tokens.verify(token);
    if (!payload || payload.includes('.')) return { ok: false, reason: 'malformed' };
    let pending: PendingConsent;
    try {
      pending = pendingSchema.parse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'))) as PendingConsent;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (pending.expiresAt <= now) return { ok: false, reason: 'expired' };
    if (!csrfCookie || !safeEqual(hashSecret(csrfCookie), pending.csrf)) return { ok: false, reason: 'csrf' };
    return { ok: true, pending };
  }
}
