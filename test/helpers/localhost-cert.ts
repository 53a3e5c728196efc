import { generate } from 'selfsigned';

/**
 * A self-signed certificate made for this test run, valid for localhost and 127.0.0.1, that
 * is its own CA: trust `cert` (OAUTH_CIMD_CA_FILE, sslrootcert) and a server with `key`
 * passes full verification.
 */
export async function localhostCertificate(): Promise<{ cert: string; key: string }> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
