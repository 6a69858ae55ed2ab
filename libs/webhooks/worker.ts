import type { JobResult, JobWithMetadata } from 'pg-boss';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { activity, toError } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { QUEUES, failedJobsRetry, msUntilDeferred, queueSchemaOf } from '../queue/index.ts';
import { deliver } from './deliver.ts';
import type { DeliveryResult } from './deliver.ts';
import { recordDelivery, recordLostDelivery, webhookBody } from './jobs.ts';
import type { WebhookJob } from './jobs.ts';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from './signature.ts';

// Sends webhooks from the agentcron.webhook queue. Each attempt is recorded on the run and the
// ledger; a failure with attempts left fails the job so pg-boss retries it with backoff; the last
// failure (or a refused destination, which no retry can fix) is recorded as failed and completes
// the job. Jobs lost with their workers on every attempt arrive on the dead letter queue and are
// recorded as failed from there. Delivery is at-least-once: receivers de-duplicate on run_id.

export interface WebhookWorkerOptions {
  pool: Pool;
  boss: PgBoss;
  logger: Logger;
  /** WEBHOOK_SECRET; unset: unsigned. */
  secret: string | undefined;
  allowPrivate: boolean;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  /** WEBHOOK_RETRY_DELAY_SECONDS: how late a retry may be noticed (see the polling below). */
  retryDelaySeconds: number;
  /** How often the dead letter queue is polled (QUEUE_SUPERVISE_INTERVAL_SECONDS: jobs reach it at a supervise pass). */
  deadLetterPollSeconds?: number;
  /**
   * The process LISTENs on pg-boss's channel and hands this worker its queues' notifications
   * (wake()): new deliveries wake it at once, so it polls only as a backstop (every
   * LISTENING_POLL_SECONDS), and a retry wakes it when due. Without: it polls every second.
   */
  listening?: boolean;
}

/** The pollers' backstop while notifications wake them. */
export const LISTENING_POLL_SECONDS = 60;
/**
 * How often the worker looks whether pg-boss has written the retries of the deliveries it failed
 * (it does once the batch's handler returns, on its own connection: on a loaded machine, seconds
 * later), and, once written, when each falls due.
 */
const RETRY_LOOK_MS = 1000;

/** Deliveries in flight per worker process: batchSize x localConcurrency. */
const BATCH_SIZE = 8;
const POLLERS = 2;

export class WebhookWorker {
  #o: WebhookWorkerOptions;
  #work: string | undefined;
  #deadWork: string | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryAt = Infinity;
  /** When the retries this worker knows of fall due (this clock), each: a poller is woken at every one. */
  #dueAt: number[] = [];
  /** Deliveries this worker failed whose retries pg-boss has not written yet: job id -> attempt fetched (retry_count), since when. */
  #unwritten = new Map<string, { retryCount: number; since: number }>();
  #writtenLook: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: WebhookWorkerOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const { boss, listening } = this.#o;
    // Polled every second without notifications (behind a transaction pooler); with them, new jobs
    // and retries wake a poller and the poll is a backstop.
    const pollSeconds = listening ? LISTENING_POLL_SECONDS : 1;
    this.#work = await boss.work(
      QUEUES.webhook,
      {
        batchSize: BATCH_SIZE,
        localConcurrency: POLLERS,
        pollingIntervalSeconds: pollSeconds,
        notifyPollingIntervalSeconds: Math.max(pollSeconds, Math.min(10, this.#o.retryDelaySeconds)),
        includeMetadata: true,
        perJobResults: true,
      },
      async (jobs: JobWithMetadata<WebhookJob>[]) => {
        const results = await Promise.all(jobs.map((job) => this.#attempt(job)));
        // A retry falls due after its backoff: look when pg-boss has written it, however late.
        if (listening) {
          for (const r of results) {
            const job = r.status === 'failed' ? jobs.find((j) => j.id === r.id) : undefined;
            if (job) this.#unwritten.set(job.id, { retryCount: job.retryCount, since: Date.now() });
          }
          this.#watchUnwritten();
        }
        return results;
      },
    );
    this.#deadWork = await boss.work<WebhookJob>(
      QUEUES.webhookDead,
      { pollingIntervalSeconds: listening ? LISTENING_POLL_SECONDS : (this.#o.deadLetterPollSeconds ?? 5) },
      async (jobs) => {
        for (const job of jobs) await this.#lost(job.data);
      },
    );
    if (listening) await this.#lookForRetries();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#writtenLook);
    await Promise.all([this.#o.boss.offWork(QUEUES.webhook, { wait: true }), this.#o.boss.offWork(QUEUES.webhookDead, { wait: true })]);
  }

  /** A notification on pg-boss's channel (the process's LISTEN): wakes the poller it concerns. */
  wake(payload: string): void {
    const { boss } = this.#o;
    if (payload === QUEUES.webhook && this.#work) boss.notifyWorker(this.#work);
    else if (payload === `${QUEUES.webhook}@deferred`) void this.#lookForRetries();
    else if ((payload === QUEUES.webhookDead || payload === `${QUEUES.webhookDead}@deferred`) && this.#deadWork) boss.notifyWorker(this.#deadWork);
  }

  /** Reads when the earliest retry falls due and wakes a poller then (one timer: the earliest). */
  async #lookForRetries(): Promise<void> {
    const { boss, pool, logger } = this.#o;
    let ms: number | null;
    try {
      ms = await msUntilDeferred(pool, queueSchemaOf(boss), QUEUES.webhook);
    } catch (err) {
      logger.warn('could not read when webhook retries fall due; the poll finds them', { err: toError(err).message });
      return;
    }
    if (ms !== null) this.#wakeIn(ms);
  }

  /** Looks, RETRY_LOOK_MS from now, whether the retries of failed deliveries are written (one look at a time). */
  #watchUnwritten(): void {
    if (this.#writtenLook || this.#stopped || this.#unwritten.size === 0) return;
    this.#writtenLook = setTimeout(() => void this.#lookAtUnwritten(), RETRY_LOOK_MS);
    this.#writtenLook.unref();
  }

  /**
   * The failed deliveries whose retries pg-boss has written: a poller is woken when each falls
   * due. The others are looked at again a RETRY_LOOK_MS later, for as long as the backstop poll
   * (LISTENING_POLL_SECONDS) would take to find them anyway.
   */
  async #lookAtUnwritten(): Promise<void> {
    const { boss, pool, logger } = this.#o;
    const jobs = [...this.#unwritten].map(([id, j]) => ({ id, retryCount: j.retryCount }));
    const giveUpBefore = Date.now() - LISTENING_POLL_SECONDS * 1000;
    try {
      const found = new Map((await failedJobsRetry(pool, queueSchemaOf(boss), QUEUES.webhook, jobs)).map((r) => [r.id, r]));
      for (const { id } of jobs) {
        const r = found.get(id);
        if (r && !r.written && this.#unwritten.get(id)!.since > giveUpBefore) continue;
        this.#unwritten.delete(id);
        if (r?.waitMs != null) this.#wakeIn(r.waitMs);
      }
    } catch (err) {
      logger.warn('could not read whether webhook retries are written; looking again', { err: toError(err).message });
      for (const { id } of jobs) if (this.#unwritten.get(id)!.since <= giveUpBefore) this.#unwritten.delete(id);
    } finally {
      this.#writtenLook = undefined;
      this.#watchUnwritten();
    }
  }

  /**
   * Wakes a poller `ms` from now. Every instant is kept, not only the earliest: the poller woken at
   * one fetches what is due then and sleeps again, and a retry due a moment later would otherwise
   * wait for the backstop poll (the look after a wake reads only retries still in the future).
   */
  #wakeIn(ms: number): void {
    if (this.#stopped) return;
    const at = Date.now() + Math.max(0, ms);
    // Read again (each look reads the earliest): the same instant, give or take the clocks' jitter.
    if (this.#dueAt.some((t) => Math.abs(t - at) < 10)) return;
    const i = this.#dueAt.findIndex((t) => t > at);
    this.#dueAt.splice(i === -1 ? this.#dueAt.length : i, 0, at);
    this.#armRetryTimer();
  }

  /** One timer, at the earliest instant known; at it, a poller is woken for every instant then due, and the timer moves to the next. */
  #armRetryTimer(): void {
    const { boss } = this.#o;
    const next = this.#dueAt[0];
    if (next === undefined || this.#stopped) return;
    if (this.#retryTimer && this.#retryAt <= next) return;
    clearTimeout(this.#retryTimer);
    this.#retryAt = next;
    this.#retryTimer = setTimeout(
      () => {
        this.#retryTimer = undefined;
        this.#retryAt = Infinity;
        const now = Date.now();
        this.#dueAt = this.#dueAt.filter((t) => t > now);
        if (this.#work) boss.notifyWorker(this.#work);
        this.#armRetryTimer();
        // More retries may fall due later.
        setTimeout(() => void this.#lookForRetries(), RETRY_LOOK_MS).unref();
      },
      Math.max(0, next - Date.now()) + 5,
    );
    this.#retryTimer.unref();
  }

  async #attempt(job: JobWithMetadata<WebhookJob>): Promise<JobResult> {
    const { pool, logger } = this.#o;
    const { url, run } = job.data;
    const attempt = job.retryCount + 1;
    const sentAt = new Date();
    const body = webhookBody(run, sentAt);
    const result = await deliver(url, body, this.#headers(body, sentAt, attempt), {
      connectTimeoutMs: this.#o.connectTimeoutMs,
      responseTimeoutMs: this.#o.responseTimeoutMs,
      allowPrivate: this.#o.allowPrivate,
      signal: job.signal,
    });
    const log = logger.child({ run_id: run.run_id, cron_id: run.cron_id ?? undefined });
    if (result.ok) {
      await recordDelivery(pool, run, { status: 'sent', attempts: attempt, error: null, sent_at: sentAt });
      metrics.webhookDelivery('delivered');
      log.debug('webhook delivered', { status: result.status, attempt });
      activity.count('webhooks_delivered');
      return { id: job.id, status: 'completed', output: { status: result.status, attempt } };
    }
    const final = !result.retry || job.retryCount >= job.retryLimit;
    await recordDelivery(pool, run, { status: final ? 'failed' : 'pending', attempts: attempt, error: result.error, sent_at: null });
    // This process's count; the api counts the deployment's from the same columns (libs/metrics/fold.ts).
    metrics.webhookDelivery(!final ? 'retried' : result.retry ? 'failed' : 'refused');
    if (final) {
      log.error('webhook failed for good', { err: result.error, attempt, url: redact(url) });
      activity.count('webhooks_failed');
      // Recorded as failed; completing keeps the job away from the dead letter queue.
      return { id: job.id, status: 'completed', output: failure(result, attempt) };
    }
    log.warn('webhook attempt failed; it will be retried', { err: result.error, attempt, url: redact(url) });
    return { id: job.id, status: 'failed', output: failure(result, attempt) };
  }

  #headers(body: string, sentAt: Date, attempt: number): Record<string, string> {
    const timestamp = Math.floor(sentAt.getTime() / 1000);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'User-Agent': 'agentcron-webhook/1',
      [TIMESTAMP_HEADER]: String(timestamp),
      'X-Agentcron-Attempt': String(attempt),
    };
    if (this.#o.secret) headers[SIGNATURE_HEADER] = signWebhook(this.#o.secret, timestamp, body);
    return headers;
  }

  /** Every attempt of this delivery was lost (its workers died): record the failure, keeping the last error. */
  async #lost(job: WebhookJob): Promise<void> {
    try {
      await recordLostDelivery(this.#o.pool, job.run);
      metrics.webhookDelivery('failed');
      this.#o.logger.error('webhook lost with its workers; recorded as failed', { run_id: job.run.run_id });
    } catch (err) {
      this.#o.logger.error('could not record a lost webhook', { run_id: job.run.run_id, err: toError(err).message });
      throw err;
    }
  }
}

const failure = (r: Extract<DeliveryResult, { ok: false }>, attempt: number) => ({ error: r.error, status: r.status ?? null, attempt });

/** A URL for a log line, without credentials or a query string (either may hold a token). */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}
