import { hashPin, PIN_PATTERN, PIN_RULE } from '../crypto/pin-hash.js';
import type { CliIo } from './io.js';

/**
 * `latchkey hash-pin`: asks for the PIN (twice, without echo, on a terminal; else reads the
 * first line of standard input) and prints the value for OAUTH_PIN_HASH on standard output,
 * so `latchkey hash-pin > pin.txt` or `$(latchkey hash-pin)` captures only the hash.
 */
export async function hashPinCommand(io: CliIo): Promise<number> {
  const pin = (await io.readSecret('New PIN: ')).trim();
  if (!PIN_PATTERN.test(pin)) {
    io.err(`latchkey hash-pin: the PIN ${PIN_RULE}\n`);
    return 1;
  }
  if (io.interactive) {
    const again = (await io.readSecret('Same PIN again: ')).trim();
    if (again !== pin) {
      io.err('latchkey hash-pin: the two PINs differ; nothing was printed\n');
      return 1;
    }
  }
  io.out(`${await hashPin(pin)}\n`);
  io.err('latchkey hash-pin: put this in the env file as OAUTH_PIN_HASH=<value>, remove OAUTH_PIN, and restart Latchkey\n');
  return 0;
}
