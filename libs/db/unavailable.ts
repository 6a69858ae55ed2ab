// Which errors mean "the database is not there (or not for us) right now" rather than "this
// query is wrong": they are answered 503 with Retry-After by the api, retried by startup, and
// never worth a stack trace.

/** Node socket errors of a connection that could not be made or was cut. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/** SQLSTATEs of a server going away, starting up, or out of connections. */
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01', // admin_shutdown: terminating connection due to administrator command
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: the database system is starting up / shutting down
  '57P05', // idle_session_timeout
  '53300', // too_many_connections
  '53000', // insufficient_resources
  '53100', // disk_full
  '53200', // out_of_memory
]);

/** SQLSTATEs of a statement that gave up waiting: the database is there but busy. */
const BUSY_SQLSTATES = new Set([
  '55P03', // lock_not_available (lock_timeout)
  '57014', // query_canceled (statement_timeout)
  '25P03', // idle_in_transaction_session_timeout
]);

/** Messages of node-postgres and pg-pool for a connection lost or never obtained. */
const UNAVAILABLE_MESSAGES = [
  /timeout exceeded when trying to connect/i, // pg-pool: no client free within connectionTimeoutMillis
  /connection terminated/i, // "Connection terminated unexpectedly", "... due to connection timeout"
  /connection timeout/i,
  /is not queryable/i, // a client whose connection broke
  /Cannot use a pool after calling end/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  /too many clients already/i,
  /remaining connection slots are reserved/i,
];

export type DatabaseTrouble = 'unavailable' | 'busy';

function codeOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

/**
 * 'unavailable' when err says the database cannot be reached or used right now (refused, cut,
 * shutting down, starting up, out of connections, no pooled connection in time), 'busy' when a
 * statement gave up on lock_timeout or statement_timeout, else null. Looks through `cause`
 * and AggregateError (a host name resolving to several addresses).
 */
export function databaseTrouble(err: unknown, depth = 0): DatabaseTrouble | null {
  if (err === null || typeof err !== 'object' || depth > 5) return null;
  const code = codeOf(err);
  if (code !== undefined) {
    if (SOCKET_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08')) return 'unavailable';
    if (BUSY_SQLSTATES.has(code)) return 'busy';
  }
  const message = (err as { message?: unknown }).message;
  if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((re) => re.test(message))) return 'unavailable';
  if (err instanceof AggregateError) {
    for (const e of err.errors) {
      const t = databaseTrouble(e, depth + 1);
      if (t) return t;
    }
  }
  return databaseTrouble((err as { cause?: unknown }).cause, depth + 1);
}

/** True when err means the database is unreachable or unusable right now (worth waiting for). */
export function isDatabaseUnavailable(err: unknown): boolean {
  return databaseTrouble(err) === 'unavailable';
}

/** A short description for logs and 503 details: the code and message, no stack. */
export function describeDatabaseError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return describeDatabaseError(err.errors[0]);
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  const text = message || (err instanceof Error ? err.name : 'error');
  return code && !text.includes(code) ? `${code}: ${text}` : text;
}
