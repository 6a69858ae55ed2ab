import type { SessionSettings } from '../db/index.ts';
import { ConfigError } from './config.ts';
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

/**
 * The connections a process of these roles opens by default (DATABASE_MAX_CONNECTIONS unset).
 * Chosen so that web + scheduler + 2 workers (5 + 3 + 4 + 4 = 16) fit a 20-connection plan,
 * whose server keeps 3 for superusers. A process running several roles (`npm start`) gets the sum.
 */
export const DEFAULT_MAX_CONNECTIONS: Record<'api' | 'scheduler' | 'worker', number> = { api: 5, scheduler: 3, worker: 4 };

/** The smallest pool a scheduler or a worker may have: a transaction in progress and a short query beside it. */
const MIN_WORKING_POOL = 2;

/** How one process splits its connections. `total` is the most it ever has open at once. */
export interface ConnectionBudget {
  total: number;
  /** One dedicated LISTEN connection per scheduler and per worker role (0 behind a transaction pooler without a direct URL). */
  listeners: number;
  /** The process's one pool: its own queries, pg-boss's and the LangGraph checkpointer's. */
  pool: number;
  /** Where the numbers came from, for the startup line. */
  source: 'DATABASE_MAX_CONNECTIONS' | 'DATABASE_POOL_MAX' | 'default';
}

/**
 * The budget rule (README "Deploying"): a process opens at most DATABASE_MAX_CONNECTIONS
 * connections: one LISTEN connection per scheduler and per worker role, the rest its pool,
 * which pg-boss and the checkpointer share. DATABASE_POOL_MAX (the older setting) gives the
 * pool alone, the LISTEN connections on top. Throws ConfigError when the number cannot hold
 * what the process needs.
 */
export function connectionBudget(config: Config, roles: { api: boolean; scheduler: boolean; worker: boolean }): ConnectionBudget {
  const listeners = (roles.scheduler && config.CRON_ENABLED ? 1 : 0) + (roles.worker ? 1 : 0);
  const minPool = roles.scheduler || roles.worker ? MIN_WORKING_POOL : 1;
  if (config.DATABASE_MAX_CONNECTIONS !== undefined) {
    const total = config.DATABASE_MAX_CONNECTIONS;
    if (total - listeners < minPool) {
      const what = [roles.api && 'api', roles.scheduler && 'scheduler', roles.worker && 'worker'].filter(Boolean).join(' + ');
      throw new ConfigError(
        'DATABASE_MAX_CONNECTIONS',
        `must be at least ${listeners + minPool} for this process (${what}: ${listeners} LISTEN connection${listeners === 1 ? '' : 's'} + a ` +
          `pool of ${minPool}) (got "${total}")`,
      );
    }
    return { total, listeners, pool: total - listeners, source: 'DATABASE_MAX_CONNECTIONS' };
  }
  if (config.DATABASE_POOL_MAX !== undefined) {
    if (config.DATABASE_POOL_MAX < minPool)
      throw new ConfigError('DATABASE_POOL_MAX', `must be at least ${minPool} for a scheduler or a worker (got "${config.DATABASE_POOL_MAX}")`);
    return { total: config.DATABASE_POOL_MAX + listeners, listeners, pool: config.DATABASE_POOL_MAX, source: 'DATABASE_POOL_MAX' };
  }
  const total =
    (roles.api ? DEFAULT_MAX_CONNECTIONS.api : 0) +
    (roles.scheduler ? DEFAULT_MAX_CONNECTIONS.scheduler : 0) +
    (roles.worker ? DEFAULT_MAX_CONNECTIONS.worker : 0);
  return { total, listeners, pool: Math.max(minPool, total - listeners), source: 'default' };
}
