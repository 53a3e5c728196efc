import { z } from 'zod';
import type { Clock } from '../clock.js';
import { hashSecret, newSecret, type RandomSource } from '../crypto/secrets.js';
import type { KeyValueStore } from '../store/types.js';

/** Who signed in with a provider; a PIN session has none. */
export interface SessionPerson {
  subject: string;
  /** Only ever a verified address (approverOf). */
  email?: string | undefined;
  name?: string | undefined;
  githubLogin?: string | undefined;
}

export interface AdminSession {
  /** The value every form of this session carries (synchronizer token). */
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  person?: SessionPerson;
}

/** A session ends after this long even when in use, so a forgotten tab cannot live forever. */
export const ADMIN_SESSION_MAX_MS = 12 * 3_600_000;

/** A session's last use is written at most this often: every page view need not be a write. */
const TOUCH_WRITE_MS = 30_000;

/** The owner's page's sessions; a person's own page (/account) keeps its sessions apart. */
export const ADMIN_SESSIONS = 'admin-session';
export const ACCOUNT_SESSIONS = 'account-session';

const sessionSchema = z.object({
  csrf: z.string(),
  createdAt: z.number(),
  lastSeenAt: z.number(),
  person: z.object({ subject: z.string(), email: z.string().optional(), name: z.string().optional(), githubLogin: z.string().optional() }).optional(),
});

/**
 * Page sessions (the owner's page, and a person's own page), in the backend's key-value
 * entries: a restart keeps people signed in, and every instance on one database knows every
 * session. The cookie holds a 256-bit random value; only its hash is stored, as for every
 * other credential. An entry expires with its idle timeout, and after twelve hours whatever
 * its use. A session started by signing in with a provider names the person.
 */
export class AdminSessions {
  constructor(
    private readonly kv: Pick<KeyValueStore, 'put' | 'get' | 'delete'>,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly idleMs: number,
    private readonly namespace: string = ADMIN_SESSIONS,
  ) {}

  /** Starts a session (for `person` when they signed in with a provider); returns the cookie value. */
  async create(person?: SessionPerson): Promise<{ cookie: string; session: AdminSession }> {
    const cookie = newSecret(this.random);
    const now = this.clock.now();
    const session: AdminSession = {
      csrf: newSecret(this.random),
      createdAt: now,
      lastSeenAt: now,
      ...(person !== undefined ? { person: { subject: person.subject, email: person.email, name: person.name, githubLogin: person.githubLogin } } : {}),
    };
    await this.save(hashSecret(cookie), session);
    return { cookie, session };
  }

  /** The live session for a cookie, marking it used now; undefined if unknown or timed out. */
  async touch(cookie: string | undefined): Promise<AdminSession | undefined> {
    if (!cookie) return undefined;
    const key = hashSecret(cookie);
    const now = this.clock.now();
    const stored = await this.kv.get(this.namespace, key, now);
    const parsed = stored === undefined ? undefined : sessionSchema.safeParse(JSON.parse(stored));
    if (!parsed?.success) return undefined;
    const session = parsed.data;
    if (now - session.lastSeenAt > this.idleMs || now - session.createdAt > ADMIN_SESSION_MAX_MS) {
      await this.kv.delete(this.namespace, key);
      return undefined;
    }
    if (now - session.lastSeenAt >= TOUCH_WRITE_MS) {
      session.lastSeenAt = now;
      await this.save(key, session);
    }
    return session;
  }

  async end(cookie: string | undefined): Promise<void> {
    if (cookie) await this.kv.delete(this.namespace, hashSecret(cookie));
  }

  private async save(key: string, session: AdminSession): Promise<void> {
    const expiresAt = Math.min(session.lastSeenAt + this.idleMs, session.createdAt + ADMIN_SESSION_MAX_MS);
    await this.kv.put(this.namespace, key, JSON.stringify(session), expiresAt);
  }
}
