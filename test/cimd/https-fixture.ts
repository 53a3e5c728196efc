import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { localhostCertificate } from '../helpers/localhost-cert.js';

/** A local HTTPS server with a certificate made for this test run, for localhost and 127.0.0.1. */
export interface HttpsFixture {
  server: Server;
  port: number;
  /** The certificate, to be trusted through configuration (OAUTH_CIMD_CA_FILE). */
  caPem: string;
  url(path: string): string;
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export async function startHttpsFixture(routes: Record<string, Handler>): Promise<HttpsFixture> {
  const pems = await localhostCertificate();
  const server = createServer({ key: pems.key, cert: pems.cert }, (req, res) => {
    const handler = routes[(req.url ?? '').split('?')[0] ?? ''];
    if (handler) return handler(req, res);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    server,
    port,
    caPem: pems.cert,
    url: (path) => `https://localhost:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function json(body: unknown, headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  };
}
