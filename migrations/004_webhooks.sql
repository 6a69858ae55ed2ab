-- Webhook delivery, recorded where a user looks: on the run (while it exists) and on the cron's
-- occurrence ledger row (which outlives an ephemeral thread and its run). A delivery that fails
-- for good is never lost silently: webhook_status = 'failed' with the last error.
--   webhook_status: NULL (the run has no webhook), pending (queued or being retried), sent, failed
--   webhook_attempts: delivery attempts made so far
--   webhook_error: why the last attempt failed (a short excerpt of a response, never a whole body)
--   webhook_sent_at: when the delivery that succeeded was sent (the payload's webhook_sent_at)

ALTER TABLE runs
  ADD COLUMN webhook_status   text CHECK (webhook_status IN ('pending', 'sent', 'failed')),
  ADD COLUMN webhook_attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN webhook_error    text,
  ADD COLUMN webhook_sent_at  timestamptz;

ALTER TABLE cron_occurrences
  ADD COLUMN webhook_status   text CHECK (webhook_status IN ('pending', 'sent', 'failed')),
  ADD COLUMN webhook_attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN webhook_error    text,
  ADD COLUMN webhook_sent_at  timestamptz;

-- "Which webhooks failed?" without scanning the ledger.
CREATE INDEX cron_occurrences_webhook_failed ON cron_occurrences (cron_id, scheduled_for DESC) WHERE webhook_status = 'failed';
