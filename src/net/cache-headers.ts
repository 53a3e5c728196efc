/**
 * RFC 6749 §5.1 and RFC 9111: responses carrying credentials must not be cached, nor must our
 * pages and MCP answers. One helper for every layer that answers HTTP (the Express routes and
 * the gateway's raw responses), so the two headers never drift apart.
 */
export function noStore(res: { setHeader(name: string, value: string): unknown }): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
}
