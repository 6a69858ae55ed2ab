export { createPool, withTransaction, PgErrorCode, pgErrorCode } from './pool.ts';
export type { Pool, PoolClient, Queryable } from './pool.ts';
export { migrate, MIGRATIONS_DIR } from './migrate.ts';
export type { MigrationResult } from './migrate.ts';
export { startEmbeddedPostgres } from './embedded.ts';
export type { EmbeddedDatabase } from './embedded.ts';
