import { isLoopbackHttp } from '../../src/net/loopback.js';
import { checkRedirectUri, matchRedirectUri, MAX_REDIRECT_URI_LENGTH } from '../../src/oauth/redirect-uri.js';

const accepted = (uri: string): boolean => checkRedirectUri(uri).ok;
const reason = (uri: string): string => {
  const check = checkRedirectUri(uri);
  return check.ok ? '' : check.reason;
};

describe('checkRedirectUri: registration rules', () => {
  it.each([
    'https://claude.ai/api/mcp/auth_callback',
    'https://claude.com/api/mcp/auth_callback',
    'https://chatgpt.com/connector_platform_oauth_redirect',
    'https://chatgpt.com/connector/oauth/abc123',
    'https://example.com/cb?tenant=1',
    'https://example.com:8443/cb',
  ])('accepts https %s', (uri) => {
    expect(accepted(uri)).toBe(true);
  });

  it.each([
    'http://localhost/callback',
    'http://localhost:53123/callback',
    'http://localhost:6274/oauth/callback',
    'http://127.0.0.1:6276/oauth/callback',
    'http://[::1]:8080/callback',
    'http://[::1]/callback',
  ])('accepts loopback http %s', (uri) => {
    expect(accepted(uri)).toBe(true);
  });

  it.each(['https://*/cb', 'https://a;sandbox/cb', "https://a'b.example.com/cb", 'https://a,b.example.com/cb'])(
    'refuses https %s: not a real host, and the host goes into the consent page CSP',
    (uri) => {
      expect(accepted(uri)).toBe(false);
      expect(reason(uri)).toMatch(/host name/);
    },
  );

  it.each(['https://claude.ai/api/mcp/auth_callback', 'https://xn--bcher-kva.example/cb', 'https://[2001:db8::1]/cb', 'https://my-app.example.com:8443/cb'])(
    'accepts ordinary https hosts %s',
    (uri) => {
      expect(accepted(uri)).toBe(true);
    },
  );

  it.each([
    'http://example.com/callback',
    'http://claude.ai/api/mcp/auth_callback',
    'http://localhost.evil.com/callback',
    'http://127.0.0.1.nip.io/callback',
    'http://10.0.0.1/callback',
    'http://192.168.1.1/callback',
    'http://[::2]/callback',
  ])('refuses non-loopback http %s', (uri) => {
    expect(accepted(uri)).toBe(false);
    expect(reason(uri)).toMatch(/https/);
  });

  it.each([
    'javascript:alert(1)',
    'JavaScript:alert(1)',
    'JAVASCRIPT://example.com/%0aalert(1)',
    'javascript://localhost/%0Aalert(document.domain)',
    'data:text/html,<script>alert(1)</script>',
    'DATA:text/html;base64,PHNjcmlwdD4=',
    'file:///etc/passwd',
    'FILE://localhost/etc/passwd',
    'vbscript:msgbox(1)',
    'VBScript:msgbox(1)',
    'blob:https://example.com/uuid',
    'about:blank',
    'view-source:https://example.com',
    'ws://localhost/cb',
    'wss://example.com/cb',
    'ftp://example.com/cb',
    'mailto:owner@example.com',
  ])('refuses the dangerous scheme in %s', (uri) => {
    expect(accepted(uri)).toBe(false);
  });

  it.each([
    'microsoft-edge:https://evil.example/phish',
    'microsoft-edge:http://evil.example',
    'MICROSOFT-EDGE:https://evil.example',
    'googlechrome://evil.example/phish',
    'googlechromes://evil.example/phish',
    'x-safari-https://evil.example/phish',
    'x-safari-http://evil.example',
    'feed:https://evil.example/rss',
    'jar:https://evil.example/a.jar!/x',
    'firefox:https://evil.example',
    'myapp:https://evil.example/phish',
    'myapp://https://evil.example/phish',
    'https:https://evil.example',
    'https:/evil.example/cb',
    'https:evil.example/cb',
    'https:///evil.example/cb',
    'com.example.app:javascript:alert(1)',
    'launcher:data:text/html,x',
    'microsoft-edge-https://evil.example/',
    'opera-https://evil.example/',
    'touch-https://evil.example/',
    'brave-https://evil.example/',
    'ddgQuickLink://evil.example/',
    'x-web-search://evil.example/',
    'googlechrome-x-callback://x-callback-url/open/?url=https%3A%2F%2Fevil.example%2F',
    'firefox-focus://open-url?url=https%3A%2F%2Fevil.example',
    'foo:%68ttps://evil.example',
    'com.example.app:/cb?next=https://evil.example',
    'com.evil:\u202E/moc.iahc//:sptth',
    'cursor://evil.example/\u202Ecb',
    'com.example.app:/c\u200Bb',
  ])('refuses the browser launcher or URL-wrapping scheme in %s', (uri) => {
    expect(accepted(uri)).toBe(false);
  });

  it.each(['myapp://localhost:1234/cb', 'com.example.app:/oauth2redirect?x=1', 'cursor://anysphere.cursor-retrieval/oauth/callback', 'vscode://publisher.ext/cb'])(
    'still accepts the native app redirect %s',
    (uri) => {
      expect(accepted(uri)).toBe(true);
    },
  );

  it.each([
    'https://example.com/cb#frag',
    'https://example.com/cb#',
    'http://localhost/cb#x',
    'cursor://callback#x',
  ])('refuses a fragment: %s', (uri) => {
    expect(accepted(uri)).toBe(false);
    expect(reason(uri)).toMatch(/fragment/);
  });

  it.each([
    ['tab inside the scheme', 'java\tscript:alert(1)'],
    ['newline inside the scheme', 'java\nscript:alert(1)'],
    ['carriage return inside the scheme', 'java\rscript:alert(1)'],
    ['leading space', ' https://example.com/cb'],
    ['trailing space', 'https://example.com/cb '],
    ['leading control character', '\u0001javascript:alert(1)'],
    ['NUL', 'https://example.com/cb\u0000'],
    ['DEL', 'https://example.com/\u007fcb'],
    ['C1 control', 'https://example.com/\u0085cb'],
    ['space in path', 'https://example.com/a b'],
    ['tab in host', 'https://exam\tple.com/cb'],
  ])('refuses %s', (_name, uri) => {
    expect(accepted(uri)).toBe(false);
    expect(reason(uri)).toMatch(/whitespace|control/);
  });

  it.each([
    'https:\\\\evil.com/cb',
    'https://example.com\\@evil.com/cb',
    'http://localhost\\@evil.com/cb',
    'https://example.com/cb\\..\\x',
  ])('refuses backslashes: %s', (uri) => {
    expect(accepted(uri)).toBe(false);
    expect(reason(uri)).toMatch(/backslash/);
  });

  it.each([
    'https://user@example.com/cb',
    'https://user:pass@example.com/cb',
    'http://localhost@evil.com/cb',
    'http://user@localhost/cb',
    'https://:secret@example.com/cb',
  ])('refuses userinfo: %s', (uri) => {
    expect(accepted(uri)).toBe(false);
  });

  it('refuses http://localhost@evil.com because its host is not loopback nor free of credentials', () => {
    expect(reason('http://localhost@evil.com/cb')).toMatch(/credentials/);
  });

  it.each(['cursor://anysphere.cursor-retrieval/oauth/callback', 'com.example.app:/oauth2redirect', 'vscode://publisher.ext/cb'])(
    'accepts the private-use scheme %s (RFC 8252 §7.1)',
    (uri) => {
      expect(accepted(uri)).toBe(true);
    },
  );

  it.each(['', '/relative/callback', 'example.com/cb', '//example.com/cb', 'not a uri'])('refuses the non-absolute %j', (uri) => {
    expect(accepted(uri)).toBe(false);
  });

  it('refuses a URI longer than the limit', () => {
    const base = 'https://example.com/';
    expect(accepted(base + 'a'.repeat(MAX_REDIRECT_URI_LENGTH - base.length))).toBe(true);
    expect(accepted(base + 'a'.repeat(MAX_REDIRECT_URI_LENGTH - base.length + 1))).toBe(false);
  });

  it('isLoopbackHttp is true only for http to the three loopback names', () => {
    expect(isLoopbackHttp(new URL('http://localhost:1/x'))).toBe(true);
    expect(isLoopbackHttp(new URL('http://127.0.0.1/x'))).toBe(true);
    expect(isLoopbackHttp(new URL('http://[::1]/x'))).toBe(true);
    expect(isLoopbackHttp(new URL('https://localhost/x'))).toBe(false);
    expect(isLoopbackHttp(new URL('http://localhost.example.com/x'))).toBe(false);
  });
});

describe('matchRedirectUri: authorization-time matching', () => {
  const claude = ['https://claude.ai/api/mcp/auth_callback'];

  it('matches a registered URI exactly', () => {
    expect(matchRedirectUri('https://claude.ai/api/mcp/auth_callback', claude)).toBe(true);
  });

  it('matches any of several registered URIs', () => {
    const registered = ['https://a.example.com/cb', 'https://b.example.com/cb'];
    expect(matchRedirectUri('https://b.example.com/cb', registered)).toBe(true);
    expect(matchRedirectUri('https://c.example.com/cb', registered)).toBe(false);
  });

  it('matches nothing when nothing is registered', () => {
    expect(matchRedirectUri('https://claude.ai/api/mcp/auth_callback', [])).toBe(false);
  });

  it.each([
    ['a longer path (prefix)', 'https://claude.ai/api/mcp/auth_callback/evil'],
    ['a shorter path', 'https://claude.ai/api/mcp'],
    ['a suffix on the last segment', 'https://claude.ai/api/mcp/auth_callbackx'],
    ['an added query', 'https://claude.ai/api/mcp/auth_callback?x=1'],
    ['a trailing slash', 'https://claude.ai/api/mcp/auth_callback/'],
    ['a subdomain', 'https://evil.claude.ai/api/mcp/auth_callback'],
    ['a host suffix', 'https://claude.ai.evil.com/api/mcp/auth_callback'],
    ['an explicit port', 'https://claude.ai:8443/api/mcp/auth_callback'],
    ['a default port written out', 'https://claude.ai:443/api/mcp/auth_callback'],
    ['http instead of https', 'http://claude.ai/api/mcp/auth_callback'],
    ['an upper-case host', 'https://CLAUDE.AI/api/mcp/auth_callback'],
    ['an upper-case path', 'https://claude.ai/API/mcp/auth_callback'],
    ['an upper-case scheme', 'HTTPS://claude.ai/api/mcp/auth_callback'],
    ['a percent-encoded path', 'https://claude.ai/api/mcp/auth%5Fcallback'],
    ['a dot segment', 'https://claude.ai/api/mcp/../mcp/auth_callback'],
    ['userinfo', 'https://claude.ai@evil.com/api/mcp/auth_callback'],
    ['a fragment', 'https://claude.ai/api/mcp/auth_callback#x'],
  ])('does not match %s', (_name, requested) => {
    expect(matchRedirectUri(requested, claude)).toBe(false);
  });

  describe('loopback port rule (RFC 8252 §7.3)', () => {
    const claudeCode = ['http://localhost/callback'];

    it('matches the registered portless localhost URI on any port', () => {
      expect(matchRedirectUri('http://localhost:53123/callback', claudeCode)).toBe(true);
      expect(matchRedirectUri('http://localhost:1/callback', claudeCode)).toBe(true);
      expect(matchRedirectUri('http://localhost/callback', claudeCode)).toBe(true);
    });

    it('matches a registered port when another port is used', () => {
      expect(matchRedirectUri('http://localhost:9999/oauth/callback', ['http://localhost:6274/oauth/callback'])).toBe(true);
      expect(matchRedirectUri('http://127.0.0.1:1234/oauth/callback', ['http://127.0.0.1:6276/oauth/callback'])).toBe(true);
      expect(matchRedirectUri('http://[::1]:1234/cb', ['http://[::1]/cb'])).toBe(true);
    });

    it('treats localhost and 127.0.0.1 as different hosts', () => {
      expect(matchRedirectUri('http://127.0.0.1:53123/callback', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://[::1]:53123/callback', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://localhost:53123/callback', ['http://127.0.0.1/callback'])).toBe(false);
    });

    it('does not match a different path', () => {
      expect(matchRedirectUri('http://localhost:53123/other', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://localhost:53123/callback/x', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://localhost:53123/Callback', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://localhost:53123/callback/', claudeCode)).toBe(false);
    });

    it('does not match a different query', () => {
      expect(matchRedirectUri('http://localhost:53123/callback?x=1', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://localhost:1/cb?a=2', ['http://localhost/cb?a=1'])).toBe(false);
      expect(matchRedirectUri('http://localhost:1/cb?a=1', ['http://localhost/cb?a=1'])).toBe(true);
    });

    it('does not extend the rule to https', () => {
      expect(matchRedirectUri('https://localhost:53123/callback', claudeCode)).toBe(false);
      expect(matchRedirectUri('https://localhost:53123/callback', ['https://localhost/callback'])).toBe(false);
    });

    it('does not match a non-loopback host that looks like one', () => {
      expect(matchRedirectUri('http://localhost.evil.com:1/callback', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://localhost@evil.com:1/callback', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://evil.com:1/callback', claudeCode)).toBe(false);
    });

    it('does not match a fragment or control characters on a loopback URI', () => {
      expect(matchRedirectUri('http://localhost:1/callback#x', claudeCode)).toBe(false);
      expect(matchRedirectUri('http://localhost:1/call\tback', claudeCode)).toBe(false);
    });

    it.each([
      ['an upper-case host', 'http://LOCALHOST:1/callback'],
      ['an upper-case scheme', 'HTTP://localhost:1/callback'],
      ['a dot segment', 'http://localhost:1/./callback'],
      ['a parent segment', 'http://localhost:1/x/../callback'],
      ['a percent-encoded path', 'http://localhost:1/%63allback'],
      ['an empty query', 'http://localhost:1/callback?'],
      ['a scheme without slashes', 'http:localhost:1/callback'],
    ])('compares the rest as a string, so %s does not match', (_name, requested) => {
      expect(matchRedirectUri(requested, claudeCode)).toBe(false);
    });

    it('does not let IPv4 shorthand stand in for 127.0.0.1', () => {
      expect(matchRedirectUri('http://127.1:5000/callback', ['http://127.0.0.1/callback'])).toBe(false);
      expect(matchRedirectUri('http://2130706433:5000/callback', ['http://127.0.0.1/callback'])).toBe(false);
      expect(matchRedirectUri('http://127.0.0.1:5000/callback', ['http://127.1/callback'])).toBe(false);
    });

    it('matches a registered URI with an explicit port on no port at all', () => {
      expect(matchRedirectUri('http://localhost/oauth/callback', ['http://localhost:6274/oauth/callback'])).toBe(true);
      expect(matchRedirectUri('http://[::1]/cb', ['http://[::1]:1234/cb'])).toBe(true);
    });

    it('does not apply the port rule to a non-loopback registration', () => {
      expect(matchRedirectUri('http://localhost:1/callback', ['https://example.com/callback'])).toBe(false);
    });
  });

  it('matches a private-use scheme only exactly', () => {
    const registered = ['cursor://anysphere.cursor-retrieval/oauth/callback'];
    expect(matchRedirectUri('cursor://anysphere.cursor-retrieval/oauth/callback', registered)).toBe(true);
    expect(matchRedirectUri('cursor://anysphere.cursor-retrieval/oauth/callback2', registered)).toBe(false);
    expect(matchRedirectUri('CURSOR://anysphere.cursor-retrieval/oauth/callback', registered)).toBe(false);
  });
});
