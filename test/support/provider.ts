import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

// A fake model provider for the flow-control tests: it rate-limits like a real one and records
// every call (idempotency key, when, the answer).

export interface Call {
  key: string;
  at: number;
  ended: number;
  status: number;
  retryAfter: number | null;
}

/**
 * A provider on 127.0.0.1: answers 429 + Retry-After above `maxConcurrent` requests in flight,
 * 503 to the first attempt of every idempotency key (when `failFirst`), else 200 after `delayMs`.
 */
export async function startProvider(opts: {
  maxConcurrent: number;
  failFirst: boolean;
  delayMs: number;
  retryAfter?: (key: string, n: number) => number | null;
  /** A longer answer time for some keys (a run held at the provider). */
  delayOf?: (key: string) => number | null;
}) {
  const calls: Call[] = [];
  const seen = new Map<string, number>();
  let inFlight = 0;
  let peak = 0;
  const server: Server = createServer((req, res) => {
    const key = String(req.headers['idempotency-key'] ?? '');
    req.resume();
    req.on('end', () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      // In flight until answered or until the caller hangs up (a killed worker).
      let done = false;
      const leave = () => {
        if (!done) inFlight--;
        done = true;
      };
      res.on('close', leave);
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      const at = Date.now();
      const answer = (status: number, retryAfter: number | null, body = '{}') => {
        if (done) return;
        leave();
        calls.push({ key, at, ended: Date.now(), status, retryAfter });
        res.writeHead(status, { 'content-type': 'application/json', ...(retryAfter !== null ? { 'retry-after': String(retryAfter) } : {}) }).end(body);
      };
      if (inFlight > opts.maxConcurrent) return answer(429, 1, '{"error":"rate limited"}');
      // Cleared when the caller hangs up: a held answer's timer (a minute) kept the test file's
      // process alive for that long after its last test.
      const timer = setTimeout(
        () => {
          if (opts.failFirst && n === 1) return answer(503, opts.retryAfter?.(key, n) ?? null, '{"error":"overloaded"}');
          const ra = opts.retryAfter?.(key, n) ?? null;
          if (ra !== null) return answer(429, ra, '{"error":"slow down"}');
          answer(200, null, JSON.stringify({ ok: true, attempt: n }));
        },
        opts.delayOf?.(key) ?? opts.delayMs,
      );
      res.on('close', () => clearTimeout(timer));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/run`;
  return {
    url,
    calls,
    peak: () => peak,
    inFlight: () => inFlight,
    resetPeak: () => (peak = inFlight),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export function writeConfig(doc: unknown): { file: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'agentcron-flow-'));
  const file = path.join(dir, 'agentcron.json');
  writeFileSync(file, JSON.stringify(doc));
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function post(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  assert.ok(res.status < 300, `${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
