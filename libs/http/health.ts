import { Router } from 'express';
import type { Request, RequestHandler, Response } from 'express';
import { describeDatabaseError } from '../db/index.ts';
import type { Pool } from '../db/index.ts';
import { latestMonitorFindings } from '../maintenance/index.ts';
import { liveProcesses } from '../liveness/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { QUEUES } from '../queue/index.ts';
import { registry } from './openapi.ts';

export interface HealthDeps {
  pool: Pool;
  boss: PgBoss;
  heartbeatSeconds: number;
  /** CRON_ENABLED and CRON_POLL_INTERVAL_SECONDS: whether and how soon a scheduler must have ticked (absent: not judged). */
  scheduler?: { enabled: boolean; pollIntervalSeconds: number };
  /**
   * The API's auth middleware. /health is public, but its details (cron ids, hostnames and pids
   * of processes, queue depths, errors) are shown only to a caller it marks admin (AUTH_MODE=none:
   * everyone; api_key: ADMIN_API_KEYS); others get the status alone. Absent: details for all.
   */
  auth?: RequestHandler;
}

/** Whether the auth middleware marks this request admin; any refusal (no key, a user key) is a no. */
async function callerIsAdmin(auth: RequestHandler, req: Request): Promise<boolean> {
  const locals: Record<string, unknown> = {};
  const probe = { locals, setHeader: () => probe, getHeader: () => undefined } as unknown as Response;
  try {
    await new Promise<void>((resolve, reject) => {
      const ret: unknown = auth(req, probe, (err?: unknown) => (err ? reject(err) : resolve()));
      if (ret instanceof Promise) ret.then(undefined, reject);
    });
  } catch {
    return false;
  }
  return locals.admin === true;
}

// Whether schedulers tick. A scheduler's tick is recorded with its next heartbeat, so "ticked
// within three poll intervals" allows one heartbeat interval more; one that just started counts
// as ticking until then. Before any scheduler has registered in this database (an api started
// alone, a fresh deployment) there is nothing to judge: `ticking` is null and /health stays 200.
const SCHEDULER_TICKS = `
  SELECT count(*)::int AS registered,
         coalesce(bool_or(last_tick_at > now() - make_interval(secs => $1)
                          OR (stopped_at IS NULL AND started_at > now() - make_interval(secs => $1))), false) AS ticking
    FROM agentcron_processes WHERE role = 'scheduler'`;

/**
 * `/ok` (the LangGraph liveness convention) and `/health` (database, queue, live processes,
 * scheduler ticks, the heartbeat monitor's findings). 503 when the database is unreachable or,
 * with CRON_ENABLED, when schedulers have registered but none has ticked within three poll intervals.
 */
// In the API reference too: public, outside the API's security schemes.
for (const [path, summary, description] of [
  ['/ok', 'Liveness (LangGraph convention)', 'Answers {"ok": true} while the process serves requests; no database query.'],
  ['/health', 'Readiness', 'The database, the queue, live schedulers and workers, the last scheduler tick; 503 while the database is unreachable or no scheduler ticks. Details (ids, hosts) only for admin keys under AUTH_MODE=api_key.'],
  ['/metrics', 'Prometheus metrics', 'Text exposition format; no series carries user data.'],
] as const) {
  registry.registerPath({ method: 'get', path, tags: ['meta'], summary, description, responses: { 200: { description: 'OK' }, ...(path === '/health' ? { 503: { description: 'Not ready' } } : {}) } });
}

export function healthRoutes({ pool, boss, heartbeatSeconds, scheduler, auth }: HealthDeps): Router {
  const router = Router();
  const staleAfterSeconds = scheduler ? 3 * scheduler.pollIntervalSeconds + heartbeatSeconds : null;
  router.get('/ok', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/health', async (req, res) => {
    const detailed = auth ? await callerIsAdmin(auth, req) : true;
    const started = Date.now();
    let database: { ok: boolean; latency_ms?: number; error?: string };
    let processes = null;
    let ticks: { registered: number; ticking: boolean } | null = null;
    let monitor = null;
    try {
      processes = await liveProcesses(pool, heartbeatSeconds);
      database = { ok: true, latency_ms: Date.now() - started };
      if (scheduler?.enabled) ticks = (await pool.query<{ registered: number; ticking: boolean }>(SCHEDULER_TICKS, [staleAfterSeconds])).rows[0];
      const latest = await latestMonitorFindings(pool);
      monitor = latest && {
        checked_at: latest.findings.checked_at,
        warnings: latest.findings.warnings,
        lagging_crons: latest.findings.lagging_crons,
        overdue_crons: latest.findings.overdue_crons,
        lost_processes: latest.findings.lost_processes,
        dead_letters: latest.findings.dead_letters,
      };
    } catch (err) {
      database = { ok: false, error: describeDatabaseError(err) };
    }
    let queue: { ok: boolean; queued?: number; active?: number; error?: string };
    try {
      const q = await boss.getQueue(QUEUES.run);
      queue = { ok: q !== null, queued: q?.queuedCount, active: q?.activeCount };
    } catch (err) {
      queue = { ok: false, error: (err as Error).message };
    }
    // null: not judged (CRON_ENABLED=false here, or no scheduler ever registered).
    const ticking = !ticks || ticks.registered === 0 ? null : ticks.ticking;
    const ok = database.ok && queue.ok && ticking !== false;
    // The database is back within seconds of a restart, and the pool reconnects by itself.
    if (!database.ok) res.setHeader('Retry-After', '5');
    // The status code says what the body says: a load balancer or orchestrator reading only the
    // code must not route to (or keep) an instance whose own check failed.
    const status = ok ? 200 : 503;
    if (!detailed) {
      // Without an admin key: the status alone, nothing about other tenants or the hosts.
      res.status(status).json({
        ok,
        database: { ok: database.ok },
        queue: { ok: queue.ok },
        schedulers: { ticking },
        details: 'shown to admin keys (ADMIN_API_KEYS) only',
      });
      return;
    }
    res.status(status).json({
      ok,
      database,
      queue,
      schedulers: {
        alive: processes?.schedulers_alive ?? null,
        last_tick_at: processes?.scheduler_last_tick_at ?? null,
        ticking,
        stale_after_seconds: staleAfterSeconds,
      },
      workers: { alive: processes?.workers_alive ?? null },
      monitor,
    });
  });
  return router;
}
