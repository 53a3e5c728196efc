import { BlockList, isIP } from 'node:net';

/**
 * Addresses a server-side fetch of a URL supplied by a client must never reach (SSRF,
 * RFC 9700 §4.16 / OAuth Client ID Metadata Document draft §6): loopback, private,
 * link-local, carrier-grade NAT, multicast, documentation and other special-purpose ranges
 * (RFC 6890, RFC 5735, RFC 6598, RFC 4193, RFC 4291).
 */
const blocked = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(network, prefix, 'ipv4');
}
// IPv6: only global unicast (2000::/3) is routable on the internet, which rules out loopback,
// unspecified, IPv4-compatible/mapped, NAT64 (64:ff9b::/96, 64:ff9b:1::/48), unique-local,
// link- and site-local and multicast at once. Inside 2000::/3, refuse the IETF protocol
// assignments (2001::/23: Teredo, benchmarking, ORCHID), documentation (2001:db8::/32) and
// 6to4 (2002::/16): tunnels reach whatever IPv4 address they embed wherever a gateway exists.
// (A subnet check, not a textual one: "2::1" begins with a 2 but is 0002::1, far outside.)
const globalUnicast = new BlockList();
globalUnicast.addSubnet('2000::', 3, 'ipv6');
for (const [network, prefix] of [
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
] as const) {
  blocked.addSubnet(network, prefix, 'ipv6');
}

/** True only for a syntactically valid, publicly routable unicast address. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !blocked.check(address, 'ipv4');
  if (family !== 6) return false;
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) reaches the embedded IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return isPublicAddress(mapped[1]);
  if (/^::ffff:/i.test(address)) return false;
  return globalUnicast.check(address, 'ipv6') && !blocked.check(address, 'ipv6');
}
