import type { Clock } from '../clock.js';
import { hashSecret, newSecret, type RandomSource } from '../crypto/secrets.js';

export interface AdminSession {
  /** The value every form of this session carries (synchronizer token). */
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
}

/** A session ends after this long even when in use, so a forgotten tab cannot live forever. */
export const ADMIN_SESSION_MAX_MS = 12 * 3_600_000;

/**
 * Owner's page sessions, in memory on purpose: a restart signs the owner out, which costs a
 * PIN entry, and no session secret ever reaches the disk. The cookie holds a 256-bit random
 * value; only its hash is kept here, as for every other credential.
 */
export class AdminSessions {
  private readonly sessions = new Map<string, AdminSession>();

  constructor(
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly idleMs: number,
  ) {}

  /** Starts a session; returns the cookie value. */
  create(): { cookie: string; session: AdminSession } {
    this.sweep();
    const cookie = newSecret(this.random);
    const now = this.clock.now();
    const session: AdminSession = { csrf: newSecret(this.random), createdAt: now, lastSeenAt: now };
    this.sessions.set(hashSecret(cookie), session);
    return { cookie, session };
  }

  /** The live session for a cookie, marking it used now; undefined if unknown or timed out. */
  touch(cookie: string | undefined): AdminSession | undefined {
    if (!cookie) return undefined;
    const key = hashSecret(cookie);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    const now = this.clock.now();
    if (now - session.lastSeenAt > this.idleMs || now - session.createdAt > ADMIN_SESSION_MAX_MS) {
      this.sessions.delete(key);
      return undefined;
    }
    session.lastSeenAt = now;
    return session;
  }

  end(cookie: string | undefined): void {
    if (cookie) this.sessions.delete(hashSecret(cookie));
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, s] of this.sessions) {
      if (now - s.lastSeenAt > this.idleMs || now - s.createdAt > ADMIN_SESSION_MAX_MS) this.sessions.delete(key);
    }
  }
}
