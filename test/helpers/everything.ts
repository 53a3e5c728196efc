import { createRequire } from 'node:module';
import path from 'node:path';

/** The real @modelcontextprotocol/server-everything stdio server, as the gateway tests start it. */
export const EVERYTHING = path.join(path.dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
