/**
 * Text a client chooses and the owner reads (client_name, URIs, contacts...). Control
 * characters (NUL, C0, C1), bidirectional overrides and isolates (U+202E turns
 * "Claude\u202Eevil" around on screen), zero-width characters and line separators let a name
 * pretend to be another; registration refuses them, and pages strip them from records stored
 * before this rule.
 */
const UNSAFE =
  // Controls, format characters (bidi overrides and isolates, zero-width, soft hyphen, tags),
  // private-use and unassigned code points, line and paragraph separators, every default-
  // ignorable code point, and the Hangul fillers that render as blanks. Emoji variation
  // selectors (U+FE00-U+FE0F) stay: they only choose how an emoji is drawn.
  /(?![\uFE00-\uFE0F])[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u115F\u1160\u3164\uFFA0]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');

export const hasUnsafeDisplayChars = (text: string): boolean => UNSAFE.test(text);

export const safeDisplayText = (text: string): string => text.replace(UNSAFE_ALL, '');

export const UNSAFE_DISPLAY_REASON = 'contains control, bidirectional or invisible characters';
