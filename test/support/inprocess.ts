import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { AgentRegistry, echo } from '../../libs/agents/index.ts';
import type { Agent } from '../../libs/agents/index.ts';
import { ensureDefaultAssistants } from '../../libs/assistants/index.ts';
import { loadConfig } from '../../libs/config/index.ts';
import type { Pool } from '../../libs/db/index.ts';
import { apiRoutes, authMiddleware, createApp, finishApp } from '../../libs/http/index.ts';
import { uiRouter } from '../../libs/ui/index.ts';
import type { PgBoss } from '../../libs/queue/index.ts';
import { quietLogger } from './engine.ts';

// The API and an instrumented echo agent in the test's own process, for tests that need to see
// what an agent was told (its AbortSignal) while driving it through the real HTTP routes.

/** What the instrumented echo saw of one run. */
export interface AgentTrace {
  started: number;
  /** When its signal aborted, and why (the reason's name: Cancelled, TimeoutError ...). */
  aborted?: number;
  reason?: string;
}

/** `echo` that records, per run id, when it started and when and why its signal aborted. */
export function tracedEcho(): { agents: AgentRegistry; traces: Map<string, AgentTrace> } {
  const traces = new Map<string, AgentTrace>();
  const traced: Agent = (input, ctx) => {
    const trace: AgentTrace = { started: Date.now() };
    traces.set(ctx.run_id, trace);
    ctx.signal.addEventListener(
      'abort',
      () => {
        trace.aborted = Date.now();
        trace.reason = (ctx.signal.reason as Error | undefined)?.name;
      },
      { once: true },
    );
    return echo(input, ctx);
  };
  return { agents: new AgentRegistry().register('echo', traced), traces };
}

export interface InProcessApi {
  url: string;
  /** JSON request, with an API key when given; answers the status and the parsed body (null when empty). */
  call(method: string, path: string, body?: unknown, key?: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

/**
 * The API's routes on 127.0.0.1, on the given pool and queue, configured as a process with these
 * variables would be (`env`: AUTH_MODE, keys ...; AUTH_MODE=none when not given).
 */
export async function startInProcessApi(
  pool: Pool,
  boss: PgBoss,
  databaseUrl: string,
  agents: AgentRegistry = new AgentRegistry().register('echo', echo),
  env: Record<string, string> = {},
): Promise<InProcessApi> {
  const logger = quietLogger();
  const config = loadConfig({ ...env, DATABASE_URL: databaseUrl });
  await ensureDefaultAssistants(pool, agents.graphIds());
  const deps = { pool, boss, config, logger, agents };
  const app = createApp({
    ...deps,
    heartbeatSeconds: 10,
    bodyLimitBytes: 1024 * 1024,
    auth: authMiddleware(deps),
    routes: apiRoutes(deps),
    dashboard: uiRouter(),
  });
  finishApp(app, logger);
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    async call(method, path, body, key) {
      const headers: Record<string, string> = {};
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (key) headers['x-api-key'] = key;
      const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An echo assistant of the anonymous user with this config (e.g. { timeout_seconds: 3 }). */
export async function insertAssistant(pool: Pool, config: Record<string, unknown>, name = 'test'): Promise<string> {
  const id = randomUUID();
  await pool.query(`INSERT INTO assistants (assistant_id, graph_id, name, config, user_id) VALUES ($1, 'echo', $2, $3, 'anonymous')`, [
    id,
    name,
    JSON.stringify(config),
  ]);
  return id;
}

/**
 * Runs every cleanup step even when an earlier one (or a failed `before`) left something undefined
 * or throws: a worker or queue left running would keep the test process alive for ever. Rethrows
 * the first error at the end.
 */
export async function teardown(...steps: (() => unknown)[]): Promise<void> {
  let first: { err: unknown } | undefined;
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      first ??= { err };
    }
  }
  if (first) throw first.err;
}
