export {
  createPool,
  endPool,
  withTransaction,
  connectionConfig,
  sessionOptions,
  guardClient,
  PgErrorCode,
  pgErrorCode,
  SERVER_KEEPALIVE,
  CLIENT_KEEPALIVE_INITIAL_DELAY_MS,
} from './pool.ts';
export type { Pool, PoolClient, Queryable, PoolOptions, ConnectionOptions, SessionSettings, WarnLogger } from './pool.ts';
export { prepared } from './prepared.ts';
export { Listener } from './listener.ts';
export { detectPooler } from './pooler.ts';
export type { PoolerCheck } from './pooler.ts';
export type { ListenerOptions } from './listener.ts';
export { databaseTrouble, isDatabaseUnavailable, describeDatabaseError } from './unavailable.ts';
export type { DatabaseTrouble } from './unavailable.ts';
export { backoffDelay, retryWhileUnavailable, sleep, DEFAULT_BACKOFF } from './backoff.ts';
export type { Backoff, WaitOptions } from './backoff.ts';
export {
  migrate,
  listMigrations,
  splitStatements,
  stripComments,
  isNoTransaction,
  cannotRunInTransaction,
  MIGRATIONS_DIR,
  MIGRATION_DEFAULTS,
  NO_TRANSACTION_MARKER,
  BATCH_MARKER,
} from './migrate.ts';
export type { MigrationResult, MigrationFile, MigrateOptions, Statement } from './migrate.ts';
export { readSchemaState, describeSchemaState, neededSchemaVersion, codeMigrations, isSchemaMismatch } from './schema-version.ts';
export type { SchemaState } from './schema-version.ts';
export { embeddedDatabaseUrl, startEmbeddedPostgres, startEmbeddedServer } from './embedded.ts';
export type { EmbeddedDatabase } from './embedded.ts';
export { retryConflicts, isTransientConflict } from './retry.ts';
export { checkMigration, HOT_TABLES, GRANDFATHERED, CONTRACT_MARKER } from './migration-rules.ts';
