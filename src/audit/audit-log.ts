import type { Clock } from '../clock.js';
import type { AuditEvent, AuditQuery, AuditStore } from '../store/types.js';
import type { AuditEntry } from './audit-events.js';

/**
 * The audit log as the rest of Latchkey uses it: events are stamped with the clock and
 * appended to the backend's AuditStore (JSON lines beside the data, or a PostgreSQL table).
 * `record` resolves only once the event is durable, so a response that follows it never
 * claims something the log could lose; when the log cannot be written the action fails as
 * the store being unavailable would (503), rather than happen unrecorded.
 */
export class AuditLog {
  constructor(
    private readonly store: AuditStore,
    private readonly clock: Clock,
  ) {}

  record(entry: AuditEntry): Promise<void> {
    return this.store.append({ at: this.clock.now(), ...entry });
  }

  /** Matching events, newest first. */
  list(query: AuditQuery): Promise<AuditEvent[]> {
    return this.store.list(query);
  }

  /** Deletes events older than the retention (OAUTH_AUDIT_RETENTION); returns how many went. */
  prune(retentionMs: number): Promise<number> {
    return this.store.prune(this.clock.now() - retentionMs);
  }
}
