import type { z } from 'zod';
import { accessTokenSchema, clientSchema, codeSchema, kvEntrySchema, refreshTokenSchema } from '../records.js';
import type { AccessTokenRecord, ClientRecord, CodeRecord, KvEntry, RefreshTokenRecord } from '../records.js';
import type { JournalOp } from './journal.js';

/**
 * The collections of the file backend: each has a snapshot file, a record schema and a key,
 * and its changes go to the one shared journal (docs/storage.md).
 */

/** The snapshot file of each collection, relative to the data directory. */
export const FILES = {
  clients: 'clients.json',
  codes: 'codes.json',
  accessTokens: 'tokens.json',
  refreshTokens: 'refresh_tokens.json',
  kv: 'kv.json',
} as const;

export type CollectionName = keyof typeof FILES;
export const COLLECTIONS = Object.keys(FILES) as CollectionName[];
const isCollection = (name: string): name is CollectionName => Object.hasOwn(FILES, name);

/**
 * Collections whose snapshot file is written only once they hold something: a data
 * directory from before they existed, or one that never used them, has no such file, and
 * that reads as an empty collection.
 */
export const OPTIONAL_COLLECTIONS: ReadonlySet<CollectionName> = new Set<CollectionName>(['kv']);

/** The record type of each collection. */
export interface CollectionRecords {
  clients: ClientRecord;
  codes: CodeRecord;
  accessTokens: AccessTokenRecord;
  refreshTokens: RefreshTokenRecord;
  kv: KvEntry;
}

/** A record of any collection. */
export type FileRecord = CollectionRecords[CollectionName];

export const SCHEMAS: Record<CollectionName, z.ZodType> = {
  clients: clientSchema,
  codes: codeSchema,
  accessTokens: accessTokenSchema,
  refreshTokens: refreshTokenSchema,
  kv: kvEntrySchema,
};

/** The key of a key-value entry in the `kv` collection: unambiguous whatever the namespace holds. */
export const kvKey = (namespace: string, key: string): string => JSON.stringify([namespace, key]);

/** The key a record is stored under in its collection. */
export function keyOf(name: CollectionName, record: FileRecord): string {
  if (name === 'clients') return (record as ClientRecord).clientId;
  if (name === 'kv') return kvKey((record as KvEntry).namespace, (record as KvEntry).key);
  return (record as CodeRecord).hash;
}

/** One map per collection. */
export const collectionMaps = <V>(): Record<CollectionName, Map<string, V>> => ({
  clients: new Map(),
  codes: new Map(),
  accessTokens: new Map(),
  refreshTokens: new Map(),
  kv: new Map(),
});

/** Checks one journal op against its collection's schema; a deletion carries null. */
export function validJournalOp(op: JournalOp): op is [CollectionName, string, FileRecord | null] {
  const [collection, , value] = op;
  if (!isCollection(collection)) return false;
  return value === null || SCHEMAS[collection].safeParse(value).success;
}
