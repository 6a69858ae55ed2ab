import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * What the api answers while its process waits for the schema (libs/processes schema-gate): 503
 * with Retry-After and a `detail` saying why, on every path; /ok and /health too, with the same
 * reason, so a platform's health check and an operator see what is missing. The real routes take
 * over the same server once the release has run.
 */
export function waitingForSchema(detail: () => string, retryAfterSeconds: number): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reason = detail();
    const body =
      path === '/ok'
        ? { ok: false, detail: reason }
        : path === '/health'
          ? { ok: false, schema: { ok: false, detail: reason }, detail: reason }
          : { detail: reason };
    res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': String(retryAfterSeconds) });
    res.end(JSON.stringify(body));
  };
}
