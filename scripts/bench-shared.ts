/** What the bench's load generator and its server processes agree on. */
export const BENCH_VERIFIER = 'bench-verifier-bench-verifier-bench-verifier-0123';
export const BENCH_REDIRECT = 'https://claude.ai/api/mcp/auth_callback';
