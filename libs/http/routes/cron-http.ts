import type { Request, Response } from 'express';
import type { Config } from '../../config/index.ts';
import type { Created } from '../../crons/index.ts';
import type { RunResponse } from '../../runs/index.ts';
import { isUuid } from '../../ids/index.ts';
import { HttpError, notFound } from '../errors.ts';

// What the crons routes read of a request beyond its validated body (its size, a path's id) and
// how a run-creating answer is sent.

/**
 * The cap on a cron body (CRON_MAX_PAYLOAD_BYTES), on the raw JSON as sent (Content-Length), or
 * re-serialized when the length is not declared. Bodies past the server's hard limit never get
 * here: the JSON parser answers 413.
 */
export function checkBodySize(req: Request, config: Config): void {
  const declared = Number(req.get('content-length'));
  const bytes = Number.isFinite(declared) && declared > 0 ? declared : Buffer.byteLength(JSON.stringify(req.body ?? {}));
  if (bytes > config.CRON_MAX_PAYLOAD_BYTES) {
    throw new HttpError(422, `body: the cron body is ${bytes} bytes, over the limit of ${config.CRON_MAX_PAYLOAD_BYTES} (CRON_MAX_PAYLOAD_BYTES)`);
  }
}

/** A path's UUID; anything else names no cron or thread, so it is a 404 (never a database error). */
export function pathId(req: Request, name: 'cron_id' | 'thread_id', missing: string): string {
  const id = req.params[name];
  if (typeof id !== 'string' || !isUuid(id)) throw notFound(missing);
  return id;
}

/** A run-creating answer: the Run plus cron_id (and any extra fields), and where the run lives. */
export function sendRun(res: Response, run: RunResponse, cronId: string, extra: Record<string, unknown> = {}): void {
  res.setHeader('Content-Location', `/threads/${run.thread_id}/runs/${run.run_id}`);
  res.json({ ...run, cron_id: cronId, ...extra });
}

/** A create's answer: its first run, or the Cron when none started. */
export function sendCreated(res: Response, created: Created): void {
  if (created.run) sendRun(res, created.run, created.cron_id);
  else res.json(created.cron);
}
