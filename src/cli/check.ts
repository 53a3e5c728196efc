/** One line of `latchkey doctor`: how it went, what was checked, what was found, and what to do. */
export type Level = 'ok' | 'warn' | 'fail';

export interface Check {
  level: Level;
  name: string;
  detail: string;
  /** What to do about it; every warning and failure has one. */
  fix?: string;
}
