import { jest } from '@jest/globals';
import { http, startHarness, type Harness } from '../helpers/http-harness.js';

/**
 * express-rate-limit's own checks stay on (src/http/rate-limits.ts): the one that tells an
 * owner behind a tunnel to set TRUST_PROXY is ERR_ERL_UNEXPECTED_X_FORWARDED_FOR, which it
 * prints with console.error, once per limiter.
 */
describe('the rate limiters warn about X-Forwarded-For without TRUST_PROXY', () => {
  const XFF_WARNING = 'ERR_ERL_UNEXPECTED_X_FORWARDED_FOR';
  let printed: unknown[][];
  let restore: () => void;
  const open: Harness[] = [];

  beforeEach(() => {
    printed = [];
    const spy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void printed.push(args));
    restore = () => spy.mockRestore();
  });
  afterEach(async () => {
    restore();
    await Promise.all(open.splice(0).map((h) => h.close()));
  });

  const start = async (env: Record<string, string>): Promise<Harness> => {
    const h = await startHarness(env);
    open.push(h);
    return h;
  };
  const tokenRequest = (h: Harness, headers: Record<string, string>) =>
    http(h).post('/token').set(headers).type('form').send({ grant_type: 'authorization_code', client_id: 'nobody', code: 'x' });
  const warnings = (): unknown[] => printed.flat().filter((a) => typeof a === 'object' && a !== null && (a as { code?: unknown }).code === XFF_WARNING);

  it('prints it once, for a request carrying X-Forwarded-For while TRUST_PROXY is unset', async () => {
    const h = await start({});
    for (let i = 0; i < 3; i++) expect((await tokenRequest(h, { 'X-Forwarded-For': '203.0.113.9' })).status).toBe(401);
    expect(warnings()).toHaveLength(1);
    expect(String(warnings()[0])).toContain("'trust proxy' setting is false");
  });

  it('prints nothing without the header, or with TRUST_PROXY set', async () => {
    await tokenRequest(await start({}), {});
    await tokenRequest(await start({ TRUST_PROXY: 'loopback' }), { 'X-Forwarded-For': '203.0.113.9' });
    expect(warnings()).toEqual([]);
  });
});
