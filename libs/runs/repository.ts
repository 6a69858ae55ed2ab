import type { Queryable } from '../db/index.ts';

/** A run as the LangGraph API shows it (plus cron_id and scheduled_for for cron runs). */
export interface RunResponse {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: string;
  updated_at: string;
  status: string;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
  kwargs: Record<string, unknown>;
  cron_id: string | null;
  scheduled_for: string | null;
  run_started_at: string | null;
  run_ended_at: string | null;
  error: unknown;
}

const RUN_COLUMNS = `run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, multitask_strategy,
  kwargs, cron_id, scheduled_for, started_at, ended_at, error`;

interface RunRow {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: Date;
  updated_at: Date;
  status: string;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
  kwargs: Record<string, unknown>;
  cron_id: string | null;
  scheduled_for: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
  error: unknown;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toRunResponse(r: RunRow): RunResponse {
  return {
    run_id: r.run_id,
    thread_id: r.thread_id,
    assistant_id: r.assistant_id,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    status: r.status,
    metadata: r.metadata,
    multitask_strategy: r.multitask_strategy,
    kwargs: r.kwargs,
    cron_id: r.cron_id,
    scheduled_for: iso(r.scheduled_for),
    run_started_at: iso(r.started_at),
    run_ended_at: iso(r.ended_at),
    error: r.error,
  };
}

/** The caller's run, or null (another user's run is as absent as a missing one). */
export async function getRun(db: Queryable, runId: string, userId: string): Promise<RunResponse | null> {
  const { rows } = await db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE run_id = $1 AND user_id = $2`, [runId, userId]);
  return rows[0] ? toRunResponse(rows[0]) : null;
}
