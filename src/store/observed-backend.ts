import type { Backend } from './types.js';

/**
 * Hears every storage operation: which one, how long it took until it resolved (for the
 * files, until the journal's fsync; for PostgreSQL, the round trips to the commit) and
 * whether it failed. The seam `/metrics` measures the store through.
 */
export interface StoreObserver {
  storeOperation(backend: Backend['kind'], operation: string, seconds: number, failed: boolean): void;
}

type Parts = Pick<Backend, 'store' | 'kv' | 'counters' | 'audit'>;

/**
 * The backend's store, key-value entries, counters and audit log, each method timed for
 * `observer` and otherwise untouched (same results, same errors, same `this`). The operation
 * is named `<part>.<method>`, e.g. `store.consumeCode`, `kv.take`: a fixed, short list.
 * A method that does not return a promise (`touchClient`) is passed through untimed.
 */
export function observeBackend(backend: Backend, observer: StoreObserver): Parts {
  const observe = <T extends object>(part: string, target: T): T => {
    const wrapped = new Map<PropertyKey, unknown>();
    return new Proxy(target, {
      get(t, prop) {
        const value: unknown = Reflect.get(t, prop, t);
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        let timed = wrapped.get(prop);
        if (timed === undefined) {
          const method = value as (...args: unknown[]) => unknown;
          const operation = `${part}.${prop}`;
          timed = (...args: unknown[]): unknown => {
            const started = process.hrtime.bigint();
            const result = method.apply(t, args);
            if (!(result instanceof Promise)) return result;
            const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
            return result.then(
              (v: unknown) => {
                observer.storeOperation(backend.kind, operation, seconds(), false);
                return v;
              },
              (err: unknown) => {
                observer.storeOperation(backend.kind, operation, seconds(), true);
                throw err;
              },
            );
          };
          wrapped.set(prop, timed);
        }
        return timed;
      },
    });
  };
  return {
    store: observe('store', backend.store),
    kv: observe('kv', backend.kv),
    counters: observe('counters', backend.counters),
    audit: observe('audit', backend.audit),
  };
}
