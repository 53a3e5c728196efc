import { createLogger, REDACT_PATHS } from '../../src/logger.js';

function capture(): { lines: string[]; stream: { write(msg: string): void } } {
  const lines: string[] = [];
  return { lines, stream: { write: (msg: string) => void lines.push(msg) } };
}

const SECRETS = {
  authorization: 'Basic c2VjcmV0LWNsaWVudDpzZWNyZXQtcGFzc3dvcmQ=',
  bearer: 'Bearer at-9f8e7d6c5b4a39281706f5e4d3c2b1a0',
  accessToken: 'at-0123456789abcdefSECRETACCESS',
  refreshToken: 'rt-0123456789abcdefSECRETREFRESH',
  clientSecret: 'cs-0123456789abcdefSECRETCLIENT',
  code: 'code-0123456789abcdefSECRETCODE',
  pin: '90817263',
  verifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
  cookie: 'latchkey_csrf=COOKIESECRET0123456789',
  token: 'tok-0123456789abcdefSECRETTOKEN',
  consent: 'consentpayload.SIGNEDCONSENTMAC',
};

describe('createLogger redaction', () => {
  it('writes JSON lines with the service name', () => {
    const { lines, stream } = capture();
    createLogger('info', stream).info({ a: 1 }, 'hello');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({ service: 'latchkey', a: 1, msg: 'hello' });
  });

  it('keeps the errno of a store failure readable (it is logged as errno, not code)', () => {
    const { lines, stream } = capture();
    createLogger('info', stream).error({ errno: 'ENOSPC', reason: 'no space left on device' }, 'write failed');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ errno: 'ENOSPC', reason: 'no space left on device' });
  });

  it('respects the level', () => {
    const { lines, stream } = capture();
    const logger = createLogger('warn', stream);
    logger.info('quiet');
    logger.warn('loud');
    expect(lines).toHaveLength(1);
  });

  it('redacts secrets at the top level, nested in requests and bodies, and deeper', () => {
    const { lines, stream } = capture();
    const logger = createLogger('trace', stream);
    logger.info({ authorization: SECRETS.authorization, access_token: SECRETS.accessToken, pin: SECRETS.pin }, 'top level');
    logger.info(
      {
        req: { method: 'POST', url: '/token', headers: { authorization: SECRETS.bearer, cookie: SECRETS.cookie } },
        res: { headers: { 'set-cookie': SECRETS.cookie, location: `https://claude.ai/cb?code=${SECRETS.code}` } },
      },
      'request',
    );
    logger.info(
      {
        body: {
          grant_type: 'authorization_code',
          code: SECRETS.code,
          code_verifier: SECRETS.verifier,
          client_secret: SECRETS.clientSecret,
          refresh_token: SECRETS.refreshToken,
          token: SECRETS.token,
          pin: SECRETS.pin,
          consent: SECRETS.consent,
        },
      },
      'form body',
    );
    logger.info({ ctx: { request: { body: { refresh_token: SECRETS.refreshToken, client_secret: SECRETS.clientSecret } } } }, 'deep');
    logger.info({ response: { access_token: SECRETS.accessToken, refresh_token: SECRETS.refreshToken, token_type: 'Bearer' } }, 'response');
    logger.error({ err: { code: SECRETS.code } }, 'error object');

    const output = lines.join('');
    expect(lines).toHaveLength(6);
    for (const [name, value] of Object.entries(SECRETS)) {
      expect([name, output.includes(value)]).toEqual([name, false]);
    }
    expect(output).toContain('[redacted]');
    // Non-secret fields survive, so the logs stay useful.
    expect(output).toContain('"grant_type":"authorization_code"');
    expect(output).toContain('"token_type":"Bearer"');
    expect(output).toContain('"url":"/token"');
  });

  it('redacts the authorization header of a request-shaped log object field by field', () => {
    const { lines, stream } = capture();
    createLogger('info', stream).info({ req: { headers: { authorization: SECRETS.bearer, 'user-agent': 'claude' } } });
    const line = JSON.parse(lines[0] ?? '') as { req: { headers: Record<string, string> } };
    expect(line.req.headers.authorization).toBe('[redacted]');
    expect(line.req.headers['user-agent']).toBe('claude');
  });

  it('redacts hyphenated keys such as set-cookie at every depth', () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    logger.info({ 'set-cookie': SECRETS.cookie });
    logger.info({ res: { 'set-cookie': SECRETS.cookie } });
    logger.info({ res: { headers: { 'set-cookie': [SECRETS.cookie] } } });
    logger.info({ a: { res: { headers: { 'set-cookie': SECRETS.cookie } } } });
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line).not.toContain('COOKIESECRET');
      expect(line).toContain('[redacted]');
    }
    expect(REDACT_PATHS.length).toBeGreaterThan(0);
  });
});
