import express from 'express';
import request from 'supertest';
import { latchkeyBearerAuth } from '../../src/resource-server/bearer-auth.js';
import {
  protectedResourceMetadata,
  protectedResourceMetadataRouter,
  protectedResourceMetadataUrl,
} from '../../src/resource-server/protected-resource-metadata.js';

const options = { resource: 'https://mcp.example.com/mcp', issuer: 'https://auth.example.com', scopesSupported: ['mcp'] };

describe('protected-resource metadata (RFC 9728)', () => {
  it('inserts the well-known segment between host and path (§3.1)', () => {
    expect(protectedResourceMetadataUrl('https://mcp.example.com/mcp')).toBe(
      'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
    );
    expect(protectedResourceMetadataUrl('https://mcp.example.com')).toBe('https://mcp.example.com/.well-known/oauth-protected-resource');
  });

  it('names Latchkey verbatim as the authorization server and has no null fields', () => {
    const doc = protectedResourceMetadata(options);
    expect(doc).toEqual({
      resource: 'https://mcp.example.com/mcp',
      authorization_servers: ['https://auth.example.com'],
      bearer_methods_supported: ['header'],
      scopes_supported: ['mcp'],
    });
  });

  it('serves the path-aware and the bare well-known URL, with CORS', async () => {
    const app = express().use(protectedResourceMetadataRouter(options));
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const res = await request(app).get(path).expect(200);
      expect(res.body.resource).toBe(options.resource);
      expect(res.headers['access-control-allow-origin']).toBe('*');
    }
    const preflight = await request(app).options('/.well-known/oauth-protected-resource/mcp').expect(204);
    expect(preflight.headers['access-control-allow-headers']).toContain('mcp-protocol-version');
  });

  it('makes the bearer middleware answer 401 with resource_metadata (§5.1)', async () => {
    const app = express().use(
      '/mcp',
      latchkeyBearerAuth({ ...options, introspectionSecret: 'introspection-secret-0123456789' }),
      (_req, res) => {
        res.json({ reached: true });
      },
    );
    const res = await request(app).post('/mcp').expect(401);
    expect(res.headers['www-authenticate']).toContain(
      'resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"',
    );
    expect(res.body).toEqual(expect.objectContaining({ error: 'invalid_token' }));
  });
});
