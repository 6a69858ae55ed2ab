import { randomUUID } from 'node:crypto';
import express from 'express';
import type { Express, Request, RequestHandler, Router } from 'express';
import type { Logger } from '../log/index.ts';
import { withLogContext } from '../log/index.ts';
import { SATURATION_DEFAULTS, metricsHandler, observeDatabase } from '../metrics/index.ts';
import { QUEUES } from '../queue/index.ts';
import { hasCredentials, withoutCredentials } from '../webhooks/index.ts';
import { docsPage } from './docs.ts';
import { errorHandler, HttpError, unknownRoute } from './errors.ts';
import { healthRoutes } from './health.ts';
import { refuseUnstorableInput } from './input-guard.ts';
import { openApiDocument } from './openapi.ts';
import type { HealthDeps } from './health.ts';

export interface AppDeps extends HealthDeps {
  logger: Logger;
  /** Hard cap on a request body; larger bodies answer 413. */
  bodyLimitBytes: number;
  /** Sets res.locals.userId for every API request (or answers 401). */
  auth: RequestHandler;
  /** The API's resource routes, mounted behind auth. */
  routes: Router[];
  /**
   * The dashboard's static files (libs/ui's router), mounted at /ui before auth: its data comes from
   * the API with the key typed in it. Passed in, not imported: libs/ui types its pages with the
   * API's schemas, so libs/http importing libs/ui would make the two folders a cycle.
   */
  dashboard?: RequestHandler;
}

/** Every request gets an id (from x-request-id or new), echoed back and bound to its log lines. */
function requestLogging(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const header = req.get('x-request-id');
    const requestId = header && /^[\w.\-:]{1,128}$/.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', requestId);
    const started = process.hrtime.bigint();
    withLogContext({ request_id: requestId }, () => {
      res.on('finish', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        logger.info(`${req.method} ${req.originalUrl} ${res.statusCode}`, { request_id: requestId, ms: Math.round(ms * 10) / 10 });
      });
      next();
    });
  };
}

const JSON_TYPES = ['application/json', 'application/*+json'];

/** Whether a request carries a body (type-is's rule: chunked, or a non-zero Content-Length). */
const hasBody = (req: Request): boolean =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');

/**
 * A body sent without `content-type: application/json` (`curl -d '{...}'` says
 * application/x-www-form-urlencoded; some clients say nothing): read as JSON when it is JSON, and
 * otherwise refused with 415 saying what to send, instead of reaching the routes as no body.
 */
function nonJsonBodies(limitBytes: number): RequestHandler {
  const readText = express.text({ limit: limitBytes, type: () => true, defaultCharset: 'utf-8' });
  return (req, res, next) => {
    if (req.body !== undefined || !hasBody(req) || req.is(JSON_TYPES)) return next();
    readText(req, res, (err?: unknown) => {
      if (err) return next(err);
      const text = typeof req.body === 'string' ? req.body : '';
      if (text.trim() === '') {
        req.body = undefined;
        return next();
      }
      try {
        req.body = JSON.parse(text) as unknown;
        next();
      } catch {
        req.body = undefined;
        const sent = req.get('content-type');
        next(
          new HttpError(
            415,
            `request bodies are JSON: send a JSON body with content-type: application/json (got ` +
              `${sent ? `content-type ${JSON.stringify(sent)}` : 'no content-type'} ` +
              `and a body that is not JSON)`,
          ),
        );
      }
    });
  };
}

/** Answers never show the credentials of a webhook URL (`https://user:secret@host/x` -> `https://host/x`). */
function hideWebhookCredentials(): RequestHandler {
  return (_req, res, next) => {
    const json = res.json.bind(res);
    res.json = (body: unknown) => json(redactWebhookUrls(body));
    next();
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where a resource carries a webhook URL: a Cron's payload, a Run's kwargs, a request echo. */
function redactOne(item: unknown): unknown {
  if (!isRecord(item)) return item;
  let out = item;
  const fix = (holder: Record<string, unknown>): Record<string, unknown> =>
    typeof holder.webhook === 'string' && hasCredentials(holder.webhook) ? { ...holder, webhook: withoutCredentials(holder.webhook) } : holder;
  out = fix(out);
  for (const key of ['payload', 'kwargs']) {
    const inner = out[key];
    if (isRecord(inner)) {
      const fixed = fix(inner);
      if (fixed !== inner) out = { ...out, [key]: fixed };
    }
  }
  return out;
}

export function redactWebhookUrls(body: unknown): unknown {
  return Array.isArray(body) ? body.map(redactOne) : redactOne(body);
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'extended');
  app.use(requestLogging(deps.logger));
  app.use(hideWebhookCredentials());
  app.use(express.json({ limit: deps.bodyLimitBytes, type: JSON_TYPES }));
  // The root names where to go instead of "no route".
  app.get('/', (_req, res) => {
    res.json({ service: 'agentcron', ui: '/ui', docs: '/docs', openapi: '/openapi.json', health: '/health', ok: '/ok' });
  });
  app.use(healthRoutes(deps));
  // Prometheus scrapes without a key, like /health: no series carries user data (labels are
  // graph ids, statuses, queue and job names). The api also reports the deployment's gauges.
  observeDatabase({
    pool: deps.pool,
    boss: deps.boss,
    queues: Object.values(QUEUES),
    heartbeatSeconds: deps.heartbeatSeconds,
    saturation: deps.saturation ?? { pgbossSchema: 'pgboss', ...SATURATION_DEFAULTS },
  });
  app.get('/metrics', metricsHandler());
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  // The API reference is public like the document it renders.
  app.get('/docs', docsPage());
  if (deps.dashboard) app.use('/ui', deps.dashboard);
  app.use(deps.auth);
  // After auth (a caller without a key hears 401 first), before any route reads the input.
  app.use(nonJsonBodies(deps.bodyLimitBytes));
  app.use(refuseUnstorableInput());
  for (const r of deps.routes) app.use(r);
  return app;
}

/** Mounted after all routes. */
export function finishApp(app: Express, logger: Logger): void {
  app.use(unknownRoute);
  app.use(errorHandler(logger));
}
