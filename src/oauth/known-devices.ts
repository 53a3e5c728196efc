import type { Clock } from '../clock.js';
import { hashSecret, newSecret, type RandomSource } from '../crypto/secrets.js';
import { TokenSigner } from '../crypto/signed-token.js';
import type { KeyValueStore } from '../store/types.js';

/** How long a browser stays known after its last correct PIN (browsers cap cookies at 400 days). */
export const KNOWN_DEVICE_MAX_AGE_MS = 180 * 86_400_000;

/** Known devices in the backend's key-value entries, by the hash of their id. */
const NAMESPACE = 'known-device';

/**
 * Browsers that entered the right PIN before ("device cookies", the pattern recommended
 * against online guessing, e.g. by OWASP): each gets a signed, long-lived cookie naming a
 * random device id, and the PIN guard gives each known device a failure budget of its own.
 * A device is known only while the backend holds it (as a hash, expiring 180 days after its
 * last correct PIN): a copied cookie stops working when the owner forgets the devices, and
 * the signing key alone (say, from a backup) cannot mint one. The cookie proves nothing
 * else: the PIN is still asked every time.
 */
export class KnownDevices {
  private readonly signer: TokenSigner;

  constructor(
    key: Buffer,
    private readonly random: RandomSource,
    private readonly kv: Pick<KeyValueStore, 'get' | 'put' | 'list' | 'delete'>,
    private readonly clock: Clock,
  ) {
    this.signer = new TokenSigner(key, 'known-device');
  }

  /** The device a cookie names, if Latchkey made the cookie and still knows the device. */
  async recognise(cookie: string | undefined): Promise<string | undefined> {
    const device = this.signer.verify(cookie);
    if (device === undefined) return undefined;
    return (await this.kv.get(NAMESPACE, hashSecret(device), this.clock.now())) === undefined ? undefined : device;
  }

  /** Remembers a device that just entered the right PIN (a new id if it had none); returns its cookie value. */
  async remember(device: string | undefined): Promise<string> {
    const id = device ?? newSecret(this.random, 16);
    const now = this.clock.now();
    await this.kv.put(NAMESPACE, hashSecret(id), String(now), now + KNOWN_DEVICE_MAX_AGE_MS);
    return this.signer.sign(id);
  }

  /** Forgets every known device: each must enter the PIN once more to be known again. Returns how many. */
  async forgetAll(): Promise<number> {
    const entries = await this.kv.list(NAMESPACE, this.clock.now());
    for (const e of entries) await this.kv.delete(NAMESPACE, e.key);
    return entries.length;
  }
}
