import type { ToolsRule } from './config-file.js';
import { errorResponse, INVALID_PARAMS, isRequest, messagesOf, type JsonRpcError } from './json-rpc.js';

/**
 * Which tools of an MCP server the gateway exposes (`tools.allow` or `tools.deny`, names or
 * `*` globs). Pure: the transports call it on every message they pass.
 */
export interface ToolPolicy {
  allows(tool: string): boolean;
  /**
   * A `tools/list` result with the hidden tools removed, or undefined when `message` needs no
   * change (anything else, or nothing hidden). Any response whose result carries a `tools`
   * array is a tools/list result (MCP schema), so no request bookkeeping is needed, and a
   * replayed or resumed stream is filtered the same way.
   */
  filter(message: unknown): unknown;
  /**
   * Answers for a POST body that calls a hidden tool: the call never reaches the server.
   * A batch (protocol 2025-03-26) with such a call is refused whole, each request with an error.
   */
  refuse(body: unknown): JsonRpcError[] | undefined;
}

/** `*` matches any run of characters, everything else matches itself. */
function globToRegExp(pattern: string): RegExp {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's');
}

export function toolPolicy(rule: ToolsRule): ToolPolicy {
  const allowing = 'allow' in rule;
  const patterns = (allowing ? rule.allow : rule.deny).map(globToRegExp);
  const matches = (tool: string): boolean => patterns.some((p) => p.test(tool));
  const allows = (tool: string): boolean => (allowing ? matches(tool) : !matches(tool));

  const filterOne = (message: unknown): unknown => {
    if (typeof message !== 'object' || message === null || !('result' in message)) return undefined;
    const result = (message as { result: unknown }).result;
    if (typeof result !== 'object' || result === null || !Array.isArray((result as { tools?: unknown }).tools)) return undefined;
    const tools = (result as { tools: unknown[] }).tools;
    const kept = tools.filter((t) => typeof t === 'object' && t !== null && typeof (t as { name?: unknown }).name === 'string' && allows((t as { name: string }).name));
    if (kept.length === tools.length) return undefined;
    return { ...message, result: { ...result, tools: kept } };
  };

  return {
    allows,
    filter(message) {
      if (!Array.isArray(message)) return filterOne(message);
      let changed = false;
      const out = message.map((m) => {
        const filtered = filterOne(m);
        if (filtered === undefined) return m;
        changed = true;
        return filtered;
      });
      return changed ? out : undefined;
    },
    refuse(body) {
      const messages = messagesOf(body);
      const hidden = messages.filter(isRequest).filter((m) => m.method === 'tools/call' && !allows(toolName(m.params)));
      if (hidden.length === 0) return undefined;
      return messages.filter(isRequest).map((m) =>
        hidden.includes(m)
          ? errorResponse(m.id, INVALID_PARAMS, `Tool ${JSON.stringify(toolName(m.params))} is not available through this gateway`)
          : errorResponse(m.id, INVALID_PARAMS, 'This batch was refused because it calls a tool that is not available through this gateway'),
      );
    },
  };
}

function toolName(params: unknown): string {
  const name = typeof params === 'object' && params !== null ? (params as { name?: unknown }).name : undefined;
  return typeof name === 'string' ? name : '';
}
