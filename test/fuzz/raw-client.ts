import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A minimal HTTP client for the fuzz tests. supertest and fetch normalise what they send
 * (they add content types, refuse odd methods, re-encode bodies); a hostile client does not,
 * so these requests go out exactly as generated, over one keep-alive connection pool.
 */

export interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

export interface RawClient {
  send(req: RawRequest): Promise<RawResponse>;
  close(): Promise<void>;
}

/** Serves `handler` on an ephemeral loopback port and returns a client for it. */
export async function rawClient(handler: http.RequestListener): Promise<RawClient> {
  const server: Server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  return {
    send: (req) =>
      new Promise<RawResponse>((resolve, reject) => {
        const body = req.body === undefined ? undefined : Buffer.from(req.body);
        const headers: Record<string, string | number> = { ...req.headers };
        if (body !== undefined) headers['content-length'] = body.length;
        const r = http.request({ host: '127.0.0.1', port, method: req.method, path: req.path, headers, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        r.on('error', reject);
        r.end(body);
      }),
    close: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
