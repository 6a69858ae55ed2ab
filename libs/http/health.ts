import { Router } from 'express';
import type { Request, RequestHandler, Response } from 'express';
import { describeDatabaseError } from '../db/index.ts';
import type { Pool } from '../db/index.ts';
import { latestMonitorFindings } from '../maintenance/index.ts';
import { liveProcesses, schedulerTicks } from '../liveness/index.ts';
import { SATURATION_DEFAULTS, saturation } from '../metrics/index.ts';
import type { Saturation, SaturationSettings } from '../metrics/index.ts';
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
  /** PGBOSS_SCHEMA, HEALTH_MAX_START_LAG_SECONDS, HEALTH_START_LAG_WINDOW_SECONDS (absent: pgboss, 30, 60). */
  saturation?: SaturationSettings;
}

/** Whether the auth middleware marks this request admin; any refusal (no key, a user key) is a no. */
async function callerIsAdmin(auth: RequestHandler, req: Request): Promise<boolean> {
  const locals: Record<string, unknown> = {};
  const probe = { locals, setHeader: () => probe, getHeader: () => undefined } as unknown as Response;
  try {
    // Passed: next() without an error; a refusal, a rejection or a throw is a no.
    const passed = await new Promise<boolean>((resolve) => {
      const ret: unknown = auth(req, probe, (err?: unknown) => resolve(!err));
      if (ret instanceof Promise) ret.then(undefined, () => resolve(false));
    });
    if (!passed) return false;
  } catch {
    return false;
  }
  return locals.admin === true;
}

/**
 * `/ok` (the LangGraph liveness convention) and `/health` (database, queue, live processes,
 * scheduler ticks, saturation, the heartbeat monitor's findings). `status`: `unavailable` (and
 * 503) when the database is unreachable, the queue check fails or, with CRON_ENABLED, schedulers
 * have registered but none has ticked within three poll intervals; `degraded` (200, `ok` true:
 * the deployment serves, behind) when libs/metrics/saturation.ts judges it so; else `ok`.
 */
// In the API reference too: public, outside the API's security schemes.
for (const [path, summary, description] of [
  ['/ok', 'Liveness (LangGraph convention)', 'Answers {"ok": true} while the process serves requests; no database query.'],
  [
    '/health',
    'Readiness',
    'The database, the queue, live schedulers and workers, the last scheduler tick, saturation (queue latency, runs waiting by reason, lag to ' +
      'start); status ok, degraded (200: behind, with reasons) or unavailable (503: the database is unreachable, the queue check fails or no ' +
      'scheduler ticks). Details (ids, hosts, figures) only for admin keys under AUTH_MODE=api_key.',
  ],
  ['/metrics', 'Prometheus metrics', 'Text exposition format; no series carries user data.'],
] as const) {
  registry.registerPath({
    method: 'get',
    path,
    tags: ['meta'],
    summary,
    description,
    responses: { 200: { description: 'OK' }, ...(path === '/health' ? { 503: { description: 'Not ready' } } : {}) },
  });
}

/** How long /health waits for the saturation figures; slower, it answers without judging them (the computation goes on for the next caller). */
const SATURATION_WAIT_MS = 3000;

function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | Error> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    new Promise<Error>((resolve) => (timer = setTimeout(() => resolve(new Error(`not read within ${ms / 1000} s`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

export function healthRoutes({ pool, boss, heartbeatSeconds, scheduler, auth, saturation: saturationSettings }: HealthDeps): Router {
  const satSettings: SaturationSettings = saturationSettings ?? { pgbossSchema: 'pgboss', ...SATURATION_DEFAULTS };
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
      if (scheduler?.enabled && staleAfterSeconds !== null) ticks = await schedulerTicks(pool, staleAfterSeconds);
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
    // Saturation is read beside the queue check (it is judged only while the rest is ok); a
    // failure to read it leaves it unjudged, never makes the deployment unavailable by itself.
    const sat: Promise<Saturation | Error> | null = database.ok ? withinMs(saturation(pool, satSettings), SATURATION_WAIT_MS) : null;
    try {
      const q = await boss.getQueue(QUEUES.run);
      queue = q ? { ok: true, queued: q.queuedCount, active: q.activeCount } : { ok: false, error: `queue ${QUEUES.run} does not exist` };
    } catch (err) {
      queue = { ok: false, error: (err as Error).message };
    }
    const figures = sat ? await sat : null;
    // null: not judged (CRON_ENABLED=false here, or no scheduler ever registered).
    const ticking = !ticks || ticks.registered === 0 ? null : ticks.ticking;
    const ok = database.ok && queue.ok && ticking !== false;
    const reasons: string[] = [];
    if (!database.ok) reasons.push(`database unreachable: ${database.error}`);
    if (!queue.ok) reasons.push(`queue check failed: ${queue.error}`);
    if (ticking === false) reasons.push(`no scheduler has ticked within ${staleAfterSeconds} s`);
    const degraded = ok && figures !== null && !(figures instanceof Error) && figures.status === 'degraded';
    if (degraded) reasons.push(...figures.reasons);
    const state = !ok ? 'unavailable' : degraded ? 'degraded' : 'ok';
    // The database is back within seconds of a restart, and the pool reconnects by itself.
    if (!database.ok) res.setHeader('Retry-After', '5');
    // The status code says what the body says: a load balancer or orchestrator reading only the
    // code must not route to (or keep) an instance whose own check failed.
    const status = ok ? 200 : 503;
    if (!detailed) {
      // Without an admin key: the status alone, nothing about other tenants or the hosts.
      res.status(status).json({
        ok,
        status: state,
        // Sentences about the whole deployment (its lag, its backlog), no tenant's data.
        reasons: reasons.map((r) =>
          r.startsWith('database unreachable') ? 'database unreachable' : r.startsWith('queue check failed') ? 'queue check failed' : r,
        ),
        database: { ok: database.ok },
        queue: { ok: queue.ok },
        schedulers: { ticking },
        details: 'shown to admin keys (ADMIN_API_KEYS) only',
      });
      return;
    }
    const figuresBody =
      figures === null
        ? {}
        : figures instanceof Error
          ? { saturation_error: describeDatabaseError(figures) }
          : {
              queue_latency_seconds: figures.queue_latency_seconds,
              waiting: figures.waiting,
              start_lag: figures.start_lag,
              backlog: figures.backlog,
            };
    res.status(status).json({
      ok,
      status: state,
      reasons,
      ...figuresBody,
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
