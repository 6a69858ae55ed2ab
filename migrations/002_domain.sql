-- Assistants, threads, runs and crons (field names follow the LangGraph API), and the
-- occurrence ledger. No GIN index on metadata: searches are per owner (user_id index) and a GIN
-- index on rows the scheduler writes thousands of times a second costs more than it saves.
-- user_id is the owner; NULL on an assistant means a system assistant
-- (the default one of a graph) visible to every user.

CREATE TABLE assistants (
  assistant_id  uuid PRIMARY KEY,
  graph_id      text NOT NULL,
  name          text NOT NULL,
  description   text,
  config        jsonb NOT NULL DEFAULT '{}',
  context       jsonb NOT NULL DEFAULT '{}',
  metadata      jsonb NOT NULL DEFAULT '{}',
  version       integer NOT NULL DEFAULT 1,
  user_id       text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assistants_user ON assistants (user_id, created_at DESC);
CREATE INDEX assistants_graph ON assistants (graph_id);

CREATE TABLE threads (
  thread_id     uuid PRIMARY KEY,
  user_id       text NOT NULL,
  metadata      jsonb NOT NULL DEFAULT '{}',
  status        text NOT NULL DEFAULT 'idle' CHECK (status IN ('idle', 'busy', 'interrupted', 'error')),
  "values"      jsonb,
  -- made by a stateless cron for one occurrence; deleted after its run unless on_run_completed = keep
  ephemeral     boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_user ON threads (user_id, created_at DESC);
CREATE INDEX threads_ephemeral ON threads (updated_at) WHERE ephemeral;

CREATE TABLE crons (
  cron_id           uuid PRIMARY KEY,
  assistant_id      uuid NOT NULL REFERENCES assistants ON DELETE CASCADE,
  -- NULL for a stateless cron (a fresh thread per occurrence)
  thread_id         uuid REFERENCES threads ON DELETE CASCADE,
  user_id           text NOT NULL,
  schedule          text NOT NULL,
  timezone          text,
  end_time          timestamptz,
  enabled           boolean NOT NULL DEFAULT true,
  on_run_completed  text CHECK (on_run_completed IN ('delete', 'keep')),
  -- the stored run body: input, config, context, webhook, multitask_strategy, interrupt_*, stream_* ...
  payload           jsonb NOT NULL DEFAULT '{}',
  metadata          jsonb NOT NULL DEFAULT '{}',
  -- the next occurrence to fire; NULL once the cron has finished (end_time passed)
  next_run_date     timestamptz,
  -- missed occurrences after downtime: latest (fire the most recent, skip the rest), all (up to a cap), none
  missed_policy     text NOT NULL DEFAULT 'latest' CHECK (missed_policy IN ('latest', 'all', 'none')),
  -- stateless crons only: what to do when the previous run is still going (thread crons use multitask_strategy)
  overlap_policy    text NOT NULL DEFAULT 'allow' CHECK (overlap_policy IN ('allow', 'skip', 'buffer_one')),
  finished_at       timestamptz,
  last_run_at       timestamptz,
  last_run_status   text,
  last_run_error    text,
  last_run_id       uuid,
  -- scheduled_for of the run that last wrote last_run_*: an older run never overwrites a newer one
  last_run_scheduled_for timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
-- The scheduler's claim query: enabled crons by next_run_date.
CREATE INDEX crons_due ON crons (next_run_date) WHERE enabled AND next_run_date IS NOT NULL;
CREATE INDEX crons_user ON crons (user_id, created_at DESC);
CREATE INDEX crons_assistant ON crons (assistant_id);
CREATE INDEX crons_thread ON crons (thread_id) WHERE thread_id IS NOT NULL;

CREATE TABLE runs (
  run_id              uuid PRIMARY KEY,
  thread_id           uuid NOT NULL REFERENCES threads ON DELETE CASCADE,
  assistant_id        uuid NOT NULL REFERENCES assistants ON DELETE CASCADE,
  user_id             text NOT NULL,
  -- no foreign key: deleting a cron leaves its started runs to finish
  cron_id             uuid,
  scheduled_for       timestamptz,
  status              text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'error', 'success', 'timeout', 'interrupted')),
  metadata            jsonb NOT NULL DEFAULT '{}',
  -- the run body: input, config, context, webhook, stream_mode ...
  kwargs              jsonb NOT NULL DEFAULT '{}',
  multitask_strategy  text NOT NULL DEFAULT 'enqueue'
                      CHECK (multitask_strategy IN ('reject', 'enqueue', 'interrupt', 'rollback')),
  output              jsonb,
  error               jsonb,
  attempts            integer NOT NULL DEFAULT 0,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  started_at          timestamptz,
  ended_at            timestamptz,
  -- one run per occurrence of a cron, enforced by the database
  CONSTRAINT runs_one_per_occurrence UNIQUE (cron_id, scheduled_for)
);
CREATE INDEX runs_thread ON runs (thread_id, created_at DESC);
CREATE INDEX runs_cron_active ON runs (cron_id) WHERE status IN ('pending', 'running');
CREATE INDEX runs_active ON runs (status, updated_at) WHERE status IN ('pending', 'running');

-- One row per occurrence of a cron, fired or not. Survives the deletion of the ephemeral thread
-- and its runs (no foreign keys), so "why didn't my 09:00 run happen?" has an answer.
CREATE TABLE cron_occurrences (
  cron_id        uuid NOT NULL,
  scheduled_for  timestamptz NOT NULL,
  run_id         uuid,
  thread_id      uuid,
  -- schedule (the cron's own occurrence), create (the run started when the cron was created), manual (trigger)
  trigger        text NOT NULL DEFAULT 'schedule' CHECK (trigger IN ('schedule', 'create', 'manual')),
  -- enqueued, running, success, error, timeout, interrupted, skipped
  status         text NOT NULL,
  -- for skipped: missed (scheduler was down), overlap (previous run still going), end_time
  reason         text,
  error          text,
  -- on a fired occurrence after downtime: how many earlier missed occurrences were skipped for it
  skipped_count  integer NOT NULL DEFAULT 0,
  enqueued_at    timestamptz,
  started_at     timestamptz,
  ended_at       timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (cron_id, scheduled_for)
);
CREATE INDEX cron_occurrences_created ON cron_occurrences (created_at);
CREATE INDEX cron_occurrences_run ON cron_occurrences (run_id) WHERE run_id IS NOT NULL;

-- Wake schedulers at once when a cron is created, changed, enabled or deleted.
CREATE FUNCTION agentcron_notify_cron_changed() RETURNS trigger AS $$
BEGIN
  -- The scheduler advancing next_run_date sets this: waking every scheduler for its own writes is noise.
  IF current_setting('agentcron.quiet', true) = 'on' THEN
    RETURN NULL;
  END IF;
  PERFORM pg_notify('agentcron_cron_changed', '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER crons_changed
  AFTER INSERT OR DELETE OR UPDATE OF schedule, timezone, enabled, next_run_date, end_time ON crons
  FOR EACH STATEMENT EXECUTE FUNCTION agentcron_notify_cron_changed();
