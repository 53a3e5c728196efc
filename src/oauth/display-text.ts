/**
 * Text a client chooses and the owner reads (client_name, URIs, contacts...). Control
 * characters (NUL, C0, C1), bidirectional overrides and isolates (U+202E turns
 * "Claude\u202Eevil" around on screen), zero-width characters and line separators let a name
 * pretend to be another; registration refuses them, and pages strip them from records stored
 * before this rule.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');

export const hasUnsafeDisplayChars = (text: string): boolean => UNSAFE.test(text);

export const safeDisplayText = (text: string): string => text.replace(UNSAFE_ALL, '');

export const UNSAFE_DISPLAY_REASON = 'contains control, bidirectional or invisible characters';
