import type { SessionSettings } from '../db/index.ts';
import type { Config } from './config.ts';
import { optionalInt } from './rules.ts';

// How each process talks to PostgreSQL: how long it waits for a connection, and the server-side
// limits of its sessions. Defaults differ by role: the api answers people (short waits, a 503
// rather than a hung request), the scheduler and workers do batch work (more generous). A
// variable that is set applies to every process reading it.

export const databaseConnectionSettings = {
  /** Opening a connection, or (api) waiting for a free pooled one; past it the api answers 503. */
  DATABASE_CONNECT_TIMEOUT_SECONDS: optionalInt(1, 600),
  /** statement_timeout of every session; 0 = none. */
  DATABASE_STATEMENT_TIMEOUT_SECONDS: optionalInt(0, 86_400),
  /** lock_timeout of every session; 0 = none. */
  DATABASE_LOCK_TIMEOUT_SECONDS: optionalInt(0, 86_400),
  /** idle_in_transaction_session_timeout of every session; 0 = none. */
  DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS: optionalInt(0, 86_400),
};

/** Which kind of process a pool serves (`npm start`'s all-in-one process counts as a worker). */
export type DatabaseRole = 'api' | 'scheduler' | 'worker';

interface RoleDefaults {
  connectSeconds: number;
  statementSeconds: number;
  lockSeconds: number;
  idleInTransactionSeconds: number;
}

export const DATABASE_ROLE_DEFAULTS: Record<DatabaseRole, RoleDefaults> = {
  api: { connectSeconds: 5, statementSeconds: 30, lockSeconds: 5, idleInTransactionSeconds: 30 },
  scheduler: { connectSeconds: 10, statementSeconds: 60, lockSeconds: 30, idleInTransactionSeconds: 15 },
  worker: { connectSeconds: 10, statementSeconds: 60, lockSeconds: 30, idleInTransactionSeconds: 15 },
};

export interface DatabaseSettings {
  connectionTimeoutMillis: number;
  session: SessionSettings;
}

/** The connection settings of a process of this role: the variables that are set, else the role's defaults. */
export function databaseSettings(config: Config, role: DatabaseRole): DatabaseSettings {
  const d = DATABASE_ROLE_DEFAULTS[role];
  const s = (value: number | undefined, fallback: number) => (value ?? fallback) * 1000;
  return {
    connectionTimeoutMillis: s(config.DATABASE_CONNECT_TIMEOUT_SECONDS, d.connectSeconds),
    session: {
      statementTimeoutMs: s(config.DATABASE_STATEMENT_TIMEOUT_SECONDS, d.statementSeconds),
      lockTimeoutMs: s(config.DATABASE_LOCK_TIMEOUT_SECONDS, d.lockSeconds),
      idleInTransactionTimeoutMs: s(config.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS, d.idleInTransactionSeconds),
    },
  };
}
