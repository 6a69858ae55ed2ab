import { Router } from 'express';
import type { Pool } from '../db/index.ts';
import { liveProcesses } from '../processes/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { QUEUES } from '../queue/index.ts';

export interface HealthDeps {
  pool: Pool;
  boss: PgBoss;
  heartbeatSeconds: number;
}

/** `/ok` (the LangGraph liveness convention) and `/health` (database, queue, live processes). */
export function healthRoutes({ pool, boss, heartbeatSeconds }: HealthDeps): Router {
  const router = Router();
  router.get('/ok', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/health', async (_req, res) => {
    const started = Date.now();
    let database: { ok: boolean; latency_ms?: number; error?: string };
    let processes = null;
    try {
      processes = await liveProcesses(pool, heartbeatSeconds);
      database = { ok: true, latency_ms: Date.now() - started };
    } catch (err) {
      database = { ok: false, error: (err as Error).message };
    }
    let queue: { ok: boolean; queued?: number; active?: number; error?: string };
    try {
      const q = await boss.getQueue(QUEUES.run);
      queue = { ok: q !== null, queued: q?.queuedCount, active: q?.activeCount };
    } catch (err) {
      queue = { ok: false, error: (err as Error).message };
    }
    const ok = database.ok && queue.ok;
    res.status(database.ok ? 200 : 503).json({
      ok,
      database,
      queue,
      schedulers: { alive: processes?.schedulers_alive ?? null, last_tick_at: processes?.scheduler_last_tick_at ?? null },
      workers: { alive: processes?.workers_alive ?? null },
    });
  });
  return router;
}
