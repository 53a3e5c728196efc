import { newSecret, type RandomSource } from '../crypto/secrets.js';
import { TokenSigner } from '../crypto/signed-token.js';

/** How long a browser stays known after its last correct PIN (browsers cap cookies at 400 days). */
export const KNOWN_DEVICE_MAX_AGE_MS = 180 * 86_400_000;

/**
 * Browsers that entered the right PIN before ("device cookies", the pattern recommended
 * against online guessing, e.g. by OWASP): each gets a signed, long-lived cookie naming a
 * random device id, and the PIN guard gives each known device a failure budget of its own.
 * The cookie proves nothing else: the PIN is still asked every time.
 */
export class KnownDevices {
  private readonly signer: TokenSigner;

  constructor(
    key: Buffer,
    private readonly random: RandomSource,
  ) {
    this.signer = new TokenSigner(key, 'known-device');
  }

  /** The device a cookie names, if Latchkey made the cookie. */
  recognise(cookie: string | undefined): string | undefined {
    return this.signer.verify(cookie);
  }

  /** The cookie value for a device that just entered the right PIN (a new id if it had none). */
  remember(device: string | undefined): string {
    return this.signer.sign(device ?? newSecret(this.random, 16));
  }
}
