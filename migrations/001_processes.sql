-- Live agentcron processes: each api, scheduler and worker upserts its row every heartbeat
-- interval; /health counts the rows seen recently.
CREATE TABLE agentcron_processes (
  process_id      uuid PRIMARY KEY,
  role            text NOT NULL CHECK (role IN ('api', 'scheduler', 'worker')),
  hostname        text NOT NULL,
  pid             integer NOT NULL,
  started_at      timestamptz NOT NULL DEFAULT now(),
  last_seen_at    timestamptz NOT NULL DEFAULT now(),
  -- scheduler only: when its loop last finished a pass over due crons
  last_tick_at    timestamptz,
  stopped_at      timestamptz
);
CREATE INDEX agentcron_processes_role_seen ON agentcron_processes (role, last_seen_at DESC);
