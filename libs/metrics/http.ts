import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import { Registry } from './prom.ts';
import type { Metric } from 'prom-client';
import type { Logger } from '../log/index.ts';
import './deployment.ts';
import { collectProcessMetrics, deploymentRegistry, registry } from './registry.ts';

// node:http through getBuiltinModule, not an ESM import: the import's namespace reads each of the
// module's exports, WebSocket included, which loads undici (~50 ms of CPU at every start; docs/performance.md, Start).
const http = process.getBuiltinModule('node:http');

let servedInProcess = false;

/** Whether this process already serves /metrics (its api, or a METRICS_PORT server). */
export const metricsServed = (): boolean => servedInProcess;

/**
 * What the api serves: the deployment's series (read from the database, the same on every api
 * instance), and this process's own series of every other name (scheduler pass durations,
 * maintenance durations, process metrics).
 */
export function apiRegistry(): Registry {
  const view = new Registry();
  // getMetricsAsArray() answers the metric objects themselves (typed as their description).
  for (const m of registry.getMetricsAsArray()) if (!deploymentRegistry.getSingleMetric(m.name)) view.registerMetric(m as unknown as Metric);
  for (const m of deploymentRegistry.getMetricsAsArray()) view.registerMetric(m as unknown as Metric);
  return view;
}

/** GET /metrics for the api's app. */
export function metricsHandler(): RequestHandler {
  servedInProcess = true;
  collectProcessMetrics();
  const view = apiRegistry();
  return async (_req, res) => {
    res.setHeader('Content-Type', view.contentType);
    res.end(await view.metrics());
  };
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** METRICS_PORT: a bare server answering GET /metrics, for scheduler and worker processes. */
export async function serveMetrics(port: number, host: string, logger: Logger): Promise<MetricsServer> {
  servedInProcess = true;
  collectProcessMetrics();
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ detail: 'only GET /metrics here' }));
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  logger.info(`metrics on http://${host === '0.0.0.0' ? 'localhost' : host}:${actual}/metrics`);
  return {
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        servedInProcess = false;
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
