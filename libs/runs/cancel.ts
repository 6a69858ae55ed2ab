import pg from 'pg';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { toError } from '../log/index.ts';

// How a worker learns that a run it is executing was cancelled on another process (an API cancel,
// multitask interrupt/rollback, a deleted thread). Whoever ends a run without its worker NOTIFYs
// the run ids on RUN_CANCEL_CHANNEL in the same transaction, so the notification arrives only if
// the cancel committed; a worker LISTENs and aborts the runs it holds at once. Notifications are
// lost while a listener reconnects, so every second the worker also asks the database which of
// its runs are no longer running: a cancel reaches the agent within about a second either way.

export const RUN_CANCEL_CHANNEL = 'agentcron_run_cancelled';

/** NOTIFY payloads are capped at 8000 bytes: 200 uuids with commas fit comfortably. */
export const CANCEL_NOTIFY_CHUNK = 200;

// A run this worker holds that is no longer `running` was ended elsewhere (or deleted with its thread).
const NOT_RUNNING = `
  SELECT v.run_id FROM unnest($1::uuid[]) AS v(run_id)
   WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = v.run_id AND r.status = 'running')`;

export interface CancelWatcherOptions {
  pool: Pool;
  logger: Logger;
  /** Connection string for the LISTEN connection; without it only the poll runs. */
  listenUrl?: string;
  /** How often the held runs are checked against the database. */
  intervalMs: number;
  /** The runs this worker is executing now. */
  held(): string[];
  /** Abort these runs' agents. */
  cancel(runIds: string[]): void;
}

export class CancelWatcher {
  #o: CancelWatcherOptions;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #listener: pg.Client | undefined;
  #checking = false;

  constructor(options: CancelWatcherOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    if (this.#o.listenUrl) await this.#listen();
    this.#timer = setInterval(() => void this.#check(), this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#timer);
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => {});
  }

  #onNotification(payload: string | undefined): void {
    if (!payload) return void this.#check();
    const held = new Set(this.#o.held());
    const mine = payload.split(',').filter((id) => held.has(id));
    if (mine.length) this.#o.cancel(mine);
  }

  /** The backstop: held runs the database no longer shows running. */
  async #check(): Promise<void> {
    const held = this.#o.held();
    if (this.#checking || held.length === 0) return;
    this.#checking = true;
    try {
      const { rows } = await this.#o.pool.query<{ run_id: string }>(NOT_RUNNING, [held]);
      if (rows.length) this.#o.cancel(rows.map((r) => r.run_id));
    } catch (err) {
      this.#o.logger.warn('could not check for cancelled runs', { err: toError(err).message });
    } finally {
      this.#checking = false;
    }
  }

  /** A dedicated LISTEN connection; lost, it reconnects (the poll covers the gap). */
  async #listen(): Promise<void> {
    const { logger, listenUrl } = this.#o;
    // Bounded: an unreachable database must not hold up the worker's start (the poll still runs).
    const client = new pg.Client({ connectionString: listenUrl, application_name: 'agentcron-worker-cancel-listen', connectionTimeoutMillis: 10_000 });
    client.on('notification', (msg) => this.#onNotification(msg.payload));
    client.on('error', (err) => {
      logger.warn('run cancel listener lost; reconnecting', { err: err.message });
      if (this.#listener === client) this.#listener = undefined;
      client.end().catch(() => {});
      if (this.#running) setTimeout(() => void this.#listen(), 1000).unref();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${RUN_CANCEL_CHANNEL}`);
      if (!this.#running) return void (await client.end().catch(() => {}));
      this.#listener = client;
      // Notifications sent while this connection was down are gone: look now.
      void this.#check();
    } catch (err) {
      logger.warn('run cancel listener could not connect; retrying', { err: toError(err).message });
      await client.end().catch(() => {});
      if (this.#running) setTimeout(() => void this.#listen(), 2000).unref();
    }
  }
}
