import type { JobResult, JobWithMetadata } from 'pg-boss';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import { activity, toError } from '../log/index.ts';
import { metrics } from '../metrics/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { QUEUES } from '../queue/index.ts';
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
}

/** Deliveries in flight per worker process: batchSize x localConcurrency. */
const BATCH_SIZE = 8;
const POLLERS = 2;

export class WebhookWorker {
  #o: WebhookWorkerOptions;

  constructor(options: WebhookWorkerOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const { boss } = this.#o;
    await boss.work(
      QUEUES.webhook,
      {
        batchSize: BATCH_SIZE,
        localConcurrency: POLLERS,
        // New jobs wake the worker through NOTIFY; retries become due at their backoff time,
        // which only a poll notices. Each of the POLLERS polls every retry delay (at most 10 s),
        // so a retry is noticed within about half of it, and an idle worker asks 0.2 times a second.
        pollingIntervalSeconds: 1,
        notifyPollingIntervalSeconds: Math.max(1, Math.min(10, this.#o.retryDelaySeconds)),
        includeMetadata: true,
        perJobResults: true,
      },
      (jobs: JobWithMetadata<WebhookJob>[]) => Promise.all(jobs.map((job) => this.#attempt(job))),
    );
    await boss.work<WebhookJob>(QUEUES.webhookDead, { pollingIntervalSeconds: this.#o.deadLetterPollSeconds ?? 5 }, async (jobs) => {
      for (const job of jobs) await this.#lost(job.data);
    });
  }

  async stop(): Promise<void> {
    await Promise.all([this.#o.boss.offWork(QUEUES.webhook, { wait: true }), this.#o.boss.offWork(QUEUES.webhookDead, { wait: true })]);
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
