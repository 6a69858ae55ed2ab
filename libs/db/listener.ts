import pg from 'pg';
import { DEFAULT_BACKOFF, backoffDelay } from './backoff.ts';
import type { Backoff } from './backoff.ts';
import { connectionConfig } from './pool.ts';
import { describeDatabaseError } from './unavailable.ts';

export interface ListenerOptions {
  connectionString: string;
  /** Channels to LISTEN on (exact names, as given to pg_notify). */
  channels: string[];
  /** Every notification on one of the channels. An exception it throws is logged, never fatal. */
  onNotification(channel: string, payload: string | undefined): void;
  /**
   * Called each time LISTEN is in place, the first time included: notifications sent while the
   * connection was down are lost, so look at the state they would have announced.
   */
  onReconnect?(): void;
  applicationName?: string;
  logger?: { warn(message: string, meta?: Record<string, unknown>): unknown; info(message: string, meta?: Record<string, unknown>): unknown };
  /** Between reconnection attempts: exponential with jitter, capped. Default 250 ms doubling up to 5 s. */
  backoff?: Backoff;
  /**
   * A `SELECT 1` on the connection this often finds a connection that died in silence (0 = off).
   * Default 30 s: what a notification lost meanwhile would have woken also wakes at its loop's
   * backstop poll (30 s for the run worker and the scheduler), so a shorter beat only adds queries.
   */
  heartbeatIntervalMs?: number;
  /** A heartbeat unanswered this long drops the connection and reconnects. Default 5 s. */
  heartbeatTimeoutMs?: number;
  /** Opening one connection. Default 10 s. */
  connectionTimeoutMillis?: number;
}

const noop = () => {};
const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * A dedicated LISTEN connection that stays: lost (database restart, failover,
 * pg_terminate_backend, a network that died in silence), it reconnects for ever with capped
 * exponential backoff and jitter, LISTENs again and calls onReconnect. Its connection always has
 * an 'error' listener and TCP keepalive; a heartbeat query finds silent deaths. `start()` never
 * throws; `stop()` closes it for good.
 *
 *   const listener = new Listener({ connectionString, channels: ['agentcron_cron_changed'],
 *     onNotification: (channel, payload) => wake(), onReconnect: () => wake(), logger });
 *   void listener.start();   // or await it: resolves once LISTEN is first in place (or on stop)
 *   ...
 *   await listener.stop();
 */
export class Listener {
  readonly #o: ListenerOptions;
  #client: pg.Client | undefined;
  #listening = false;
  #stopped = false;
  #started = false;
  #attempt = 0;
  #everListened = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #firstListen: Promise<void>;
  #resolveFirst: () => void = noop;

  constructor(opts: ListenerOptions) {
    if (opts.channels.length === 0) throw new Error('Listener needs at least one channel');
    this.#o = opts;
    this.#firstListen = new Promise((resolve) => (this.#resolveFirst = resolve));
  }

  /** True while LISTEN is in place on a live connection (as far as is known). */
  get listening(): boolean {
    return this.#listening;
  }

  /** Starts connecting; resolves once LISTEN is first in place, or when stopped first. Never rejects. */
  start(): Promise<void> {
    if (!this.#started && !this.#stopped) {
      this.#started = true;
      void this.#connect();
    }
    return this.#firstListen;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#listening = false;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#heartbeatTimer);
    this.#resolveFirst();
    const client = this.#client;
    this.#client = undefined;
    if (client) await closeClient(client);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const { channels, logger } = this.#o;
    const client = new pg.Client(
      connectionConfig(this.#o.connectionString, {
        applicationName: this.#o.applicationName ?? 'agentcron-listen',
        connectionTimeoutMillis: this.#o.connectionTimeoutMillis ?? 10_000,
      }),
    );
    this.#client = client;
    client.on('error', (err) => this.#lost(client, err));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    client.on('notification', (msg) => {
      try {
        this.#o.onNotification(msg.channel, msg.payload);
      } catch (err) {
        logger?.warn('notification handler failed', { channel: msg.channel, err: describeDatabaseError(err) });
      }
    });
    try {
      await client.connect();
      for (const channel of channels) await client.query(`LISTEN ${quoteIdent(channel)}`);
    } catch (err) {
      this.#lost(client, err);
      return;
    }
    if (this.#client !== client) return; // lost or stopped meanwhile
    if (this.#everListened) logger?.info(`LISTEN connection back (${channels.join(', ')})`);
    this.#everListened = true;
    this.#listening = true;
    this.#attempt = 0;
    this.#scheduleHeartbeat(client);
    this.#resolveFirst();
    try {
      this.#o.onReconnect?.();
    } catch (err) {
      logger?.warn('reconnect handler failed', { err: describeDatabaseError(err) });
    }
  }

  /** The connection `client` is gone (or never came): drop it, once, and try again later. */
  #lost(client: pg.Client, err: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#listening = false;
    clearTimeout(this.#heartbeatTimer);
    void closeClient(client);
    if (this.#stopped) return;
    const delay = backoffDelay(this.#attempt++, this.#o.backoff ?? DEFAULT_BACKOFF);
    this.#o.logger?.warn(`LISTEN connection lost (${describeDatabaseError(err)}); reconnecting in ${(delay / 1000).toFixed(1)}s`, {
      channels: this.#o.channels,
      attempt: this.#attempt,
    });
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#connect(), delay);
    this.#retryTimer.unref();
  }

  #scheduleHeartbeat(client: pg.Client): void {
    const every = this.#o.heartbeatIntervalMs ?? 30_000;
    if (every <= 0) return;
    const timeoutMs = this.#o.heartbeatTimeoutMs ?? 5_000;
    this.#heartbeatTimer = setTimeout(() => void this.#beat(client, timeoutMs), every);
    this.#heartbeatTimer.unref();
  }

  /** One heartbeat: a lost connection is handed to #lost (never a rejection), a live one beats again. */
  async #beat(client: pg.Client, timeoutMs: number): Promise<void> {
    if (this.#client !== client) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.query('SELECT 1'),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`heartbeat unanswered within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      this.#lost(client, err);
      return;
    } finally {
      clearTimeout(timer);
    }
    if (this.#client === client) this.#scheduleHeartbeat(client);
  }
}

/** Ends a client for good, whatever state it is in; its later errors go nowhere. */
async function closeClient(client: pg.Client): Promise<void> {
  client.removeAllListeners();
  client.on('error', noop);
  // end() waits for the server; on a connection that died in silence it would wait for ever.
  const ended = client.end().catch(noop);
  const timer = setTimeout(() => (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy(), 1000);
  timer.unref();
  await ended;
  clearTimeout(timer);
}
