import type { Pool, PoolClient } from '../db/index.ts';
import { retryConflicts, withTransaction } from '../db/index.ts';
import type { PgBoss } from '../queue/index.ts';
import { QUEUES, transactionDb } from '../queue/index.ts';
import { withoutCredentials } from './address.ts';

// A webhook job carries the whole Run it reports: it is enqueued in the transaction that ends the
// run, and by the time it is sent an ephemeral thread (and its run) may have been deleted.

/** The Run as a webhook reports it: the API's Run plus values, without the delivery bookkeeping. */
export interface WebhookRun {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: string;
  updated_at: string;
  status: string;
  metadata: Record<string, unknown>;
  multitask_strategy: string;
  kwargs: Record<string, unknown>;
  cron_id: string | null;
  scheduled_for: string | null;
  run_started_at: string | null;
  run_ended_at: string;
  /** The thread's values once the run ended (its output on success). */
  values: unknown;
  error: { error: string; message: string } | null;
}

export interface WebhookJob {
  url: string;
  run: WebhookRun;
}

/**
 * The body sent: the Run with the time of this attempt as webhook_sent_at. Its kwargs.webhook is
 * the URL without credentials: they travel as the request's authorization, never in a body.
 */
export function webhookBody(run: WebhookRun, sentAt: Date): string {
  const { values, error, ...rest } = run;
  const webhook = rest.kwargs?.webhook;
  const kwargs = typeof webhook === 'string' ? { ...rest.kwargs, webhook: withoutCredentials(webhook) } : rest.kwargs;
  return JSON.stringify({ ...rest, kwargs, webhook_sent_at: sentAt.toISOString(), values, error });
}

/**
 * Enqueues deliveries inside the caller's transaction (job id = run id, so a run has one) and
 * marks them pending on the runs and ledger rows that still exist.
 */
export async function enqueueWebhooks(client: PoolClient, boss: PgBoss, jobs: WebhookJob[]): Promise<void> {
  if (jobs.length === 0) return;
  await boss.insert(
    QUEUES.webhook,
    jobs.map((j) => ({ id: j.run.run_id, data: j })),
    { db: transactionDb(client) },
  );
  await client.query(
    `WITH r AS (
       UPDATE runs SET webhook_status = 'pending' WHERE run_id = ANY($1::uuid[])
     )
     UPDATE cron_occurrences o SET webhook_status = 'pending'
       FROM unnest($2::uuid[], $3::timestamptz[]) AS v(cron_id, scheduled_for)
      WHERE o.cron_id = v.cron_id AND o.scheduled_for = v.scheduled_for`,
    [
      jobs.map((j) => j.run.run_id),
      jobs.filter((j) => j.run.cron_id && j.run.scheduled_for).map((j) => j.run.cron_id),
      jobs.filter((j) => j.run.cron_id && j.run.scheduled_for).map((j) => j.run.scheduled_for),
    ],
  );
}

export interface DeliveryRecord {
  status: 'pending' | 'sent' | 'failed';
  attempts: number | null;
  error: string | null;
  sent_at: Date | null;
}

/**
 * Records a delivery attempt on the run (if it still exists) and its ledger row (cron runs). A
 * success clears the error of earlier attempts; a delivery already recorded as sent is not
 * overwritten by a late duplicate's failure. The run first, then the ledger row (the lock order of
 * libs/runs/lifecycle.ts: a retry holds the old run and then reopens the row), two statements
 * because PostgreSQL runs an unreferenced data-modifying CTE after its main statement; a deadlock
 * with a cascade is retried here, since a failed bookkeeping would send the webhook again.
 */
export async function recordDelivery(pool: Pool, run: Pick<WebhookRun, 'run_id' | 'cron_id' | 'scheduled_for'>, r: DeliveryRecord): Promise<void> {
  const set = `SET webhook_status = $2, webhook_attempts = COALESCE($3, webhook_attempts),
              webhook_error = CASE WHEN $2 = 'sent' THEN NULL ELSE COALESCE($4, webhook_error) END, webhook_sent_at = $5`;
  const values = [r.status, r.attempts, r.error, r.sent_at];
  await retryConflicts(() =>
    withTransaction(pool, async (client) => {
      await client.query(`UPDATE runs ${set} WHERE run_id = $1 AND webhook_status IS DISTINCT FROM 'sent'`, [run.run_id, ...values]);
      await client.query(`UPDATE cron_occurrences ${set} WHERE cron_id = $1 AND scheduled_for = $6 AND webhook_status IS DISTINCT FROM 'sent'`, [
        run.cron_id,
        ...values,
        run.scheduled_for,
      ]);
    }),
  );
}

/** Every attempt was lost with its worker: failed for good, after whatever error was last recorded. The run first, as above. */
export async function recordLostDelivery(pool: Pool, run: Pick<WebhookRun, 'run_id' | 'cron_id' | 'scheduled_for'>): Promise<void> {
  const why = 'the delivery was abandoned: its worker stopped during every attempt';
  const set = `SET webhook_status = 'failed', webhook_error = concat_ws('; ', webhook_error, $2::text)`;
  await retryConflicts(() =>
    withTransaction(pool, async (client) => {
      await client.query(`UPDATE runs ${set} WHERE run_id = $1 AND webhook_status IS DISTINCT FROM 'sent'`, [run.run_id, why]);
      await client.query(`UPDATE cron_occurrences ${set} WHERE cron_id = $1 AND scheduled_for = $3 AND webhook_status IS DISTINCT FROM 'sent'`, [
        run.cron_id,
        why,
        run.scheduled_for,
      ]);
    }),
  );
}
