import { describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import type { AuditEvent } from '../../src/store/types.js';
import { BODIES, http, openConsent, postConsent, register, useHarness, type Harness } from '../helpers/http-harness.js';
import { cookieHeader, setCookies } from '../helpers/sign-in.js';

/**
 * The audit log over HTTP (issue 12, "Audit log"): what the events of real requests say.
 */

const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/**
 * The owner's PIN sign-in form, as a browser: GET /admin, then POST the PIN with the form's
 * cookie (set by hand: the harness's issuer is https, so the cookies are Secure).
 */
async function adminPinLogin(h: Harness, pin: string): Promise<{ res: Response; cookies: Record<string, string> }> {
  const page = await http(h).get('/admin');
  const res = await http(h).post('/admin/login').set('Cookie', cookieHeader(setCookies(page))).type('form').send({ csrf: csrfOf(page.text), pin });
  return { res, cookies: setCookies(res) };
}

async function auditEvents(h: Harness, type: string): Promise<AuditEvent[]> {
  return (await h.services.backend.audit.list({ limit: 1000, type })).reverse();
}

describe('PIN failures and lockouts', () => {
  const s = useHarness({ OAUTH_PIN_MAX_FAILURES_PER_HOUR: '2' });

  it('name the client of the consent page they were typed on, and none on /admin', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    expect((await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: '00000001', decision: 'approve' })).text).toContain('That PIN is not right');
    expect((await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: '00000002', decision: 'approve' })).status).toBe(429);

    expect((await adminPinLogin(s.h, '00000003')).res.text).toContain('That PIN is not right');

    const failed = await auditEvents(s.h, 'pin.failed');
    expect(failed.map((e) => [e.detail?.purpose, e.clientId])).toEqual([
      ['consent', client.client_id],
      ['consent', client.client_id],
      ['admin', undefined],
    ]);
    for (const e of failed) expect(e.ip).toMatch(/127\.0\.0\.1/);
    const locked = await auditEvents(s.h, 'pin.locked');
    expect(locked).toHaveLength(1);
    expect(locked[0]).toMatchObject({ clientId: client.client_id, detail: { purpose: 'consent' } });
  });
});

describe('retention (OAUTH_AUDIT_RETENTION)', () => {
  const s = useHarness();
  const DAY = 86_400_000;

  it('keeps events 90 days by default; the daemon\'s cleanup job deletes older ones and keeps the rest', async () => {
    expect(s.h.config.audit.retentionMs).toBe(90 * DAY);
    const old = await register(s.h, BODIES.claude);
    s.h.clock.advance(60 * DAY);
    const recent = await register(s.h, BODIES.chatgpt);
    const registered = async (): Promise<string[]> => (await auditEvents(s.h, 'client.registered')).map((e) => e.clientId ?? '');
    expect(await registered()).toEqual([old.client_id, recent.client_id]);

    // 89 days after the first events: nothing is old enough yet.
    s.h.clock.advance(29 * DAY);
    await s.h.services.cleanup();
    expect(await registered()).toEqual([old.client_id, recent.client_id]);
    expect(await auditEvents(s.h, 'config.loaded')).toHaveLength(1);

    // 91 days: the first day's events (the start-up and the first registration) are gone.
    s.h.clock.advance(2 * DAY);
    await s.h.services.cleanup();
    expect(await registered()).toEqual([recent.client_id]);
    expect(await auditEvents(s.h, 'config.loaded')).toEqual([]);
  });
});
