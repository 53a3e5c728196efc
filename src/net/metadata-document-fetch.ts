import { lookup } from 'node:dns/promises';
import { request, type RequestOptions } from 'node:https';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { isPublicAddress } from './address-policy.js';
import { formatDuration } from '../clock.js';

/** Why a document could not be fetched. The message is for the log; see {@link publicReason}. */
export class MetadataFetchError extends Error {
  constructor(
    readonly reason: 'not-https' | 'private-address' | 'dns' | 'timeout' | 'redirect' | 'status' | 'too-large' | 'bad-json' | 'network',
    message: string,
    /** The HTTP status the document URL answered, for `status`. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'MetadataFetchError';
  }

  /**
   * A failure that may pass by itself (the host unreachable, slow, or failing with a 5xx), as
   * opposed to an answer that refuses (404, a redirect, a bad document).
   */
  get transient(): boolean {
    return this.reason === 'dns' || this.reason === 'timeout' || this.reason === 'network' || (this.reason === 'status' && (this.status ?? 0) >= 500);
  }

  /**
   * What a caller may be told. Transport failures (no such host, refused, TLS, timeout) all
   * read the same, so Latchkey tells a stranger nothing about hosts and ports it cannot fetch
   * from (no port-scanning relay); what a reachable host answered is the client's own business.
   */
  get publicReason(): string {
    return this.reason === 'dns' || this.reason === 'timeout' || this.reason === 'network' ? 'the document could not be fetched' : this.message;
  }
}

export interface MetadataFetchOptions {
  /** Extra CA certificates (PEM) to trust besides the system roots; never a switch that turns checks off. */
  ca?: string;
  /** Test-only: let the fetch reach loopback and private addresses. */
  allowPrivateAddresses: boolean;
  timeoutMs: number;
  maxBytes: number;
}

export interface FetchedDocument {
  body: unknown;
  /** The Cache-Control response header, if any. */
  cacheControl?: string;
}

export type MetadataFetcher = (url: URL) => Promise<FetchedDocument>;

/**
 * Fetches a client's metadata document the careful way: https only, every resolved address
 * checked and the connection pinned to the checked address (so DNS rebinding cannot swap
 * it afterwards), no redirects, a byte limit and one deadline for the whole exchange.
 */
export function createMetadataFetcher(options: MetadataFetchOptions): MetadataFetcher {
  const ca = options.ca ? [...rootCertificates, options.ca] : undefined;

  const resolve = async (hostname: string): Promise<{ address: string; family: number }> => {
    const literal = hostname.replace(/^\[|\]$/g, '');
    const family = isIP(literal);
    const addresses = family ? [{ address: literal, family }] : await lookup(hostname, { all: true, verbatim: true }).catch(() => {
      throw new MetadataFetchError('dns', `the host ${hostname} could not be resolved`);
    });
    const first = addresses[0];
    if (!first) throw new MetadataFetchError('dns', `the host ${hostname} has no address`);
    if (!options.allowPrivateAddresses && addresses.some((a) => !isPublicAddress(a.address))) {
      throw new MetadataFetchError('private-address', `the host ${hostname} resolves to a private, loopback or link-local address`);
    }
    return first;
  };

  return async (url: URL): Promise<FetchedDocument> => {
    if (url.protocol !== 'https:') throw new MetadataFetchError('not-https', 'the client_id URL must use https');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new MetadataFetchError('timeout', `the document did not arrive within ${formatDuration(options.timeoutMs)}`)),
        options.timeoutMs,
      );
    });
    const controller = new AbortController();
    try {
      return await Promise.race([deadline, fetchPinned(url, await Promise.race([deadline, resolve(url.hostname)]), ca, options.maxBytes, controller.signal)]);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  };
}

function fetchPinned(
  url: URL,
  pinned: { address: string; family: number },
  ca: string[] | undefined,
  maxBytes: number,
  signal: AbortSignal,
): Promise<FetchedDocument> {
  // Node calls this instead of DNS; TLS still verifies the certificate against url.hostname.
  const pinnedLookup: LookupFunction = (_hostname, opts, callback) => {
    if (opts.all) callback(null, [{ address: pinned.address, family: pinned.family }]);
    else callback(null, pinned.address, pinned.family);
  };
  const requestOptions: RequestOptions = {
    method: 'GET',
    headers: { accept: 'application/json', 'user-agent': 'latchkey (client metadata fetch)' },
    lookup: pinnedLookup,
    signal,
    agent: false,
    ...(ca ? { ca } : {}),
  };
  return new Promise<FetchedDocument>((resolve, reject) => {
    const req = request(url, requestOptions, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        return reject(new MetadataFetchError('redirect', `the document URL answered with a redirect (${status}); redirects are not followed`));
      }
      if (status !== 200) {
        res.resume();
        return reject(new MetadataFetchError('status', `the document URL answered with HTTP ${status}`, status));
      }
      const declared = Number(res.headers['content-length'] ?? '0');
      if (declared > maxBytes) {
        res.destroy();
        return reject(new MetadataFetchError('too-large', `the document is larger than ${maxBytes} bytes`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          res.destroy();
          reject(new MetadataFetchError('too-large', `the document is larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', () => reject(new MetadataFetchError('network', 'the connection broke while reading the document')));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return reject(new MetadataFetchError('bad-json', 'the document is not valid JSON'));
        }
        const cacheControl = res.headers['cache-control'];
        resolve({ body, ...(cacheControl ? { cacheControl } : {}) });
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') return;
      const tls = typeof err.code === 'string' && /CERT|SSL|TLS/.test(err.code);
      reject(new MetadataFetchError('network', tls ? `the TLS certificate of ${url.hostname} is not trusted (${err.code})` : `could not connect to ${url.hostname}`));
    });
    req.end();
  });
}
