import { randomUUID } from 'node:crypto';
import express from 'express';
import type { Express, RequestHandler, Router } from 'express';
import type { Logger } from '../log/index.ts';
import { withLogContext } from '../log/index.ts';
import { metricsHandler, observeDatabase } from '../metrics/index.ts';
import { QUEUES } from '../queue/index.ts';
import { docsPage } from './docs.ts';
import { errorHandler, unknownRoute } from './errors.ts';
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

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'extended');
  app.use(requestLogging(deps.logger));
  app.use(express.json({ limit: deps.bodyLimitBytes, type: ['application/json', 'application/*+json'] }));
  app.use(healthRoutes(deps));
  // Prometheus scrapes without a key, like /health: no series carries user data (labels are
  // graph ids, statuses, queue and job names). The api also reports the deployment's gauges.
  observeDatabase({ pool: deps.pool, boss: deps.boss, queues: Object.values(QUEUES), heartbeatSeconds: deps.heartbeatSeconds });
  app.get('/metrics', metricsHandler());
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });
  // The API reference is public like the document it renders.
  app.get('/docs', docsPage());
  app.use(deps.auth);
  // After auth (a caller without a key hears 401 first), before any route reads the input.
  app.use(refuseUnstorableInput());
  for (const r of deps.routes) app.use(r);
  return app;
}

/** Mounted after all routes. */
export function finishApp(app: Express, logger: Logger): void {
  app.use(unknownRoute);
  app.use(errorHandler(logger));
}
