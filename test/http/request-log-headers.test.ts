import express from 'express';
import helmet, { type HelmetOptions } from 'helmet';
import request from 'supertest';
import { createLogger } from '../../src/logger.js';
import { requestLog } from '../../src/http/request-log.js';
import { securityHeaders } from '../../src/http/security-headers.js';

const OPTIONS: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'no-referrer' },
  strictTransportSecurity: true,
};

function appWith(middleware: express.RequestHandler): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(middleware);
  app.get('/x', (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

describe('securityHeaders (helmet computed once)', () => {
  it('sends exactly the headers helmet sends per request', async () => {
    const strip = (h: Record<string, string>): Record<string, string> => {
      const { date: _d, etag: _e, ...rest } = h;
      return rest;
    };
    const viaHelmet = await request(appWith(helmet(OPTIONS))).get('/x');
    const viaOnce = await request(appWith(securityHeaders(OPTIONS))).get('/x');
    expect(strip(viaOnce.headers as Record<string, string>)).toEqual(strip(viaHelmet.headers as Record<string, string>));
    expect(viaOnce.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    expect(viaOnce.headers['x-frame-options']).toBe('DENY');
  });

  it('refuses a function-valued CSP directive, which would be computed once and frozen for every request', () => {
    const nonce = (): string => "'nonce-abc'";
    for (const value of [[nonce], ["'self'", nonce]]) {
      const options: HelmetOptions = { contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], scriptSrc: value } } };
      expect(() => securityHeaders(options)).toThrow('the CSP directive scriptSrc is computed per request');
    }
    // Helmet itself takes such a directive: only the precomputation must refuse it.
    expect(() => helmet({ contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], scriptSrc: [nonce] } } })).not.toThrow();
  });
});

describe('requestLog', () => {
  const capture = () => {
    const lines: Record<string, unknown>[] = [];
    return { lines, stream: { write: (msg: string) => void lines.push(JSON.parse(msg) as Record<string, unknown>) } };
  };

  it('logs method, path without the query string, status and time, once per request', async () => {
    const { lines, stream } = capture();
    await request(appWith(requestLog(createLogger('info', stream)))).get('/x?code=SECRETCODE&state=s');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'request completed', req: { method: 'GET', path: '/x' }, res: { statusCode: 200 } });
    expect(typeof lines[0]?.responseTime).toBe('number');
    expect(JSON.stringify(lines)).not.toContain('SECRETCODE');
  });

  it('logs a 5xx at error level, and nothing at all when silent', async () => {
    const { lines, stream } = capture();
    const app = express();
    app.use(requestLog(createLogger('info', stream)));
    app.get('/boom', (_req, res) => {
      res.status(503).json({ error: 'temporarily_unavailable' });
    });
    await request(app).get('/boom');
    expect(lines[0]).toMatchObject({ level: 50, res: { statusCode: 503 } });

    const quiet = capture();
    await request(appWith(requestLog(createLogger('silent', quiet.stream)))).get('/x');
    expect(quiet.lines).toEqual([]);
  });
});
