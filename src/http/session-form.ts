import type { Request } from 'express';
import { safeEqual } from '../crypto/secrets.js';
import { singleParams } from './params.js';

/** What a page says when a form cannot be taken: its status, title and message. */
export type RefuseForm = (status: number, title: string, message: string) => void;

/**
 * Reads a form posted within a signed-in page session (the owner's page, /account): each field
 * once, then the session, then the form's CSRF token against the session's (synchronizer
 * token), compared in constant time. Undefined when the form was refused (the page is sent).
 */
export async function readSessionForm<K extends string, S extends { csrf: string }>(
  req: Request,
  names: readonly K[],
  session: () => Promise<S | undefined>,
  refuse: RefuseForm,
  where: string,
): Promise<{ session: S; fields: Partial<Record<K | 'csrf' | 'confirm', string>> } | undefined> {
  let fields: Partial<Record<K | 'csrf' | 'confirm', string>>;
  try {
    fields = singleParams(req.body, [...names, 'csrf', 'confirm'] as const);
  } catch {
    refuse(400, 'Invalid form', `The form was not sent correctly. Go back to ${where} and try again.`);
    return undefined;
  }
  const live = await session();
  if (!live) return undefined;
  if (!fields.csrf || !safeEqual(fields.csrf, live.csrf)) {
    refuse(403, 'Security check failed', `This form did not come from ${where}. Nothing was changed.`);
    return undefined;
  }
  return { session: live, fields };
}
