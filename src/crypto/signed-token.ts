import { createHmac } from 'node:crypto';
import { safeEqual } from './secrets.js';

/**
 * Values Latchkey hands out and must recognise as its own later (a consent form, a device
 * cookie, a sign-in form token): `<value>.<mac>`, where the MAC is an HMAC-SHA-256 under a key
 * kept by the backend, over the purpose and the value. The purpose separates the uses, so a
 * token made for one can never pass as another. Checked in constant time.
 */
export class TokenSigner {
  constructor(
    private readonly key: Buffer,
    private readonly purpose: string,
  ) {}

  /** `value` must not contain a dot. */
  sign(value: string): string {
    return `${value}.${this.mac(value)}`;
  }

  /** The signed value, or undefined if the token was not made by this signer for this purpose. */
  verify(token: string | undefined): string | undefined {
    if (!token) return undefined;
    const dot = token.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const value = token.slice(0, dot);
    return safeEqual(token.slice(dot + 1), this.mac(value)) ? value : undefined;
  }

  private mac(value: string): string {
    return createHmac('sha256', this.key).update(`${this.purpose}\n${value}`).digest('base64url');
  }
}
