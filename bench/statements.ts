// A statement profile of a herd: with BENCH_PG_STAT_STATEMENTS=1 and no DATABASE_URL, the bench's
// own embedded PostgreSQL starts with pg_stat_statements (a shared server's settings are never
// touched), and each agentcron herd reports, per occurrence, the statements its processes ran:
// calls, rows, execution and planning time, WAL, by statement (nested ones included).
import type { Pool } from '../libs/db/index.ts';
import { fmt, say, table } from './report.ts';

export const PROFILE_STATEMENTS = process.env.BENCH_PG_STAT_STATEMENTS === '1' && !process.env.DATABASE_URL;

/** Server settings of the embedded PostgreSQL when profiling statements. */
export const STATEMENT_SETTINGS: Record<string, string> = {
  shared_preload_libraries: 'pg_stat_statements',
  'pg_stat_statements.track': 'all',
  'pg_stat_statements.track_planning': 'on',
  'pg_stat_statements.max': '10000',
};

export interface Statement {
  query: string;
  top: boolean;
  calls: number;
  rows: number;
  exec_ms: number;
  plan_ms: number;
  wal_bytes: number;
}

/** Forgets every statement counted so far (the bench's own server only). */
export async function resetStatements(pool: Pool): Promise<void> {
  await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await pool.query('SELECT pg_stat_statements_reset()');
}

/** This database's statements since the reset, the costliest first. */
export async function statements(pool: Pool): Promise<Statement[]> {
  const { rows } = await pool.query<Record<string, string | boolean>>(
    `SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, toplevel AS top, calls, rows, total_exec_time AS exec_ms,
            total_plan_time AS plan_ms, wal_bytes
       FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND query NOT LIKE '%pg_stat_statements%'
      ORDER BY total_exec_time + total_plan_time DESC`,
  );
  return rows.map((r) => ({
    query: String(r.query),
    top: r.top === true,
    calls: Number(r.calls),
    rows: Number(r.rows),
    exec_ms: Number(r.exec_ms),
    plan_ms: Number(r.plan_ms),
    wal_bytes: Number(r.wal_bytes),
  }));
}

export function statementsTable(list: Statement[], n: number, limit = 25): void {
  const total = list.filter((s) => s.top).reduce((s, x) => s + x.exec_ms + x.plan_ms, 0);
  say();
  say(
    `   Statements per occurrence, ${fmt(n)} herd (pg_stat_statements on the bench's embedded PostgreSQL; ` +
      `top-level statements took ${fmt((total * 1000) / n)} µs per occurrence in all; ` +
      "nested = run inside a function or trigger, already within its caller's time):",
  );
  table(
    ['µs / occurrence (exec + plan)', 'share', 'calls / 1,000 occ.', 'rows / call', 'WAL B / occ.', 'statement'],
    list
      .slice(0, limit)
      .map((s) => [
        `${fmt(((s.exec_ms + s.plan_ms) * 1000) / n, 1)} (${fmt((s.plan_ms * 1000) / n, 1)} plan)`,
        s.top ? `${fmt(((s.exec_ms + s.plan_ms) / total) * 100)}%` : 'nested',
        fmt((s.calls * 1000) / n, 1),
        fmt(s.rows / Math.max(1, s.calls), 1),
        fmt(s.wal_bytes / n),
        s.query.slice(0, 140),
      ]),
    [5],
  );
}
