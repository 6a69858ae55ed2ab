-- The occurrence ledger partitioned by scheduled_for (issue 20, "Bounded data"), online (issue 23).
-- This file only creates functions and a column: the switch itself is 020 (and, when old
-- processes are still running at release time, the ledger_partitions maintenance job).
--
-- How: cron_occurrences gets a CHECK (scheduled_for < cutover), added NOT VALID (a brief lock)
-- and validated apart (SHARE UPDATE EXCLUSIVE: reads and writes go on while it scans). Then, in
-- one short transaction, the table is renamed cron_occurrences_legacy, a partitioned parent named
-- cron_occurrences is made with the same columns, defaults, constraints and indexes (empty: built
-- at once), and the legacy table is ATTACHed as the partition FROM (MINVALUE) TO (cutover): the
-- validated CHECK spares the scan, its indexes are attached to the parent's, not rebuilt. A
-- DEFAULT partition takes any row no daily partition covers, and daily (UTC) partitions from the
-- cutover on are created ahead. No row is copied or rewritten.
--
-- Why the switch waits for the old processes: code before this release settles ledger rows by
-- ctid alone (libs/runs/lifecycle.ts SETTLE_LEDGER, RETRY_LEDGER). On a partitioned table a ctid
-- is only unique within a partition, so such an UPDATE would also settle the rows at the same
-- ctid of every other partition. The new code matches (tableoid, ctid). Each process now
-- records the schema version its code needs (agentcron_processes.schema_version); the switch
-- runs only when no live process (seen within 5 minutes, not stopped) is older than 019. A
-- release on a deployment with old processes still running therefore prepares (constraint,
-- validation) and the ledger_partitions job switches once they are gone.
--
-- Cutover: the start of a UTC day at least two days ahead, moved on (dropped, added again, validated
-- again) when it comes within two days while the switch is still waiting, so the CHECK never
-- refuses an insert (an occurrence is never lost to it).

ALTER TABLE agentcron_processes ADD COLUMN IF NOT EXISTS schema_version integer;

-- The cutover of the validated CHECK on the unpartitioned ledger; NULL when there is none (yet).
CREATE OR REPLACE FUNCTION agentcron_ledger_cutover(validated_only boolean) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
  def text;
BEGIN
  SELECT pg_get_constraintdef(c.oid) INTO def
    FROM pg_constraint c
   WHERE c.conrelid = 'cron_occurrences'::regclass AND c.conname = 'cron_occurrences_before_cutover'
     AND (c.convalidated OR NOT validated_only);
  IF def IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN substring(def FROM '''([^'']+)''')::timestamptz;
END $$;

-- Step 1 (a transaction of its own, brief ACCESS EXCLUSIVE): the CHECK, NOT VALID. Nothing once
-- the ledger is partitioned.
CREATE OR REPLACE FUNCTION agentcron_ledger_prepare() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  cutover timestamptz;
  wanted timestamptz := (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '3 days') AT TIME ZONE 'UTC';
BEGIN
  -- One at a time (a release and the ledger_partitions job on several workers): the state is read after it.
  PERFORM pg_advisory_xact_lock(7245019);
  IF (SELECT relkind FROM pg_class WHERE oid = 'cron_occurrences'::regclass) = 'p' THEN
    RETURN 'partitioned';
  END IF;
  cutover := agentcron_ledger_cutover(false);
  IF cutover IS NOT NULL AND cutover >= now() + interval '2 days' THEN
    RETURN format('cutover %s', cutover);
  END IF;
  IF cutover IS NOT NULL THEN
    ALTER TABLE cron_occurrences DROP CONSTRAINT cron_occurrences_before_cutover;
  END IF;
  EXECUTE format('ALTER TABLE cron_occurrences ADD CONSTRAINT cron_occurrences_before_cutover CHECK (scheduled_for < %L::timestamptz) NOT VALID', wanted);
  RETURN format('cutover %s (new)', wanted);
END $$;

-- Step 2 (a transaction of its own): VALIDATE scans the ledger under SHARE UPDATE EXCLUSIVE only.
CREATE OR REPLACE FUNCTION agentcron_ledger_validate() RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
  -- One at a time (a release and the ledger_partitions job on several workers): the state is read after it.
  PERFORM pg_advisory_xact_lock(7245019);
  IF (SELECT relkind FROM pg_class WHERE oid = 'cron_occurrences'::regclass) = 'p' THEN
    RETURN 'partitioned';
  END IF;
  IF agentcron_ledger_cutover(false) IS NULL OR agentcron_ledger_cutover(true) IS NOT NULL THEN
    RETURN 'nothing to validate';
  END IF;
  ALTER TABLE cron_occurrences VALIDATE CONSTRAINT cron_occurrences_before_cutover;
  RETURN 'validated';
END $$;

-- Daily partitions (UTC) from `back` days ago (0: today) to `days` ahead, each created empty apart
-- from the parent, given its range CHECK and ATTACHed (SHARE UPDATE EXCLUSIVE on the parent: reads
-- and writes go on). Answers how many were made.
--
-- When this runs late (the DEFAULT partition already holds rows of a day, because the job did not
-- run for a week), no row is moved: the day's partition starts just after the DEFAULT partition's
-- last row of that day, found under the DEFAULT partition's lock (which ATTACH takes anyway to
-- check its rows), and those rows stay where they are (retention deletes them row by row). Moving
-- them could hide them from a statement planned before the move (a settle would miss its row).
CREATE OR REPLACE FUNCTION agentcron_ledger_partitions_ahead(days integer, back integer DEFAULT 0) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  d date;
  lo timestamptz;
  hi timestamptz;
  newest timestamptz;
  part text;
  made integer := 0;
  covered timestamptz;
BEGIN
  IF (SELECT relkind FROM pg_class WHERE oid = 'cron_occurrences'::regclass) <> 'p' THEN
    RETURN 0;
  END IF;
  -- One creator at a time (the migration, jobs on several workers).
  PERFORM pg_advisory_xact_lock(7245019);
  -- Days below the legacy partition's upper bound are its own.
  SELECT max(substring(pg_get_expr(c.relpartbound, c.oid) FROM 'TO \(''([^'']+)''\)')::timestamptz) INTO covered
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = 'cron_occurrences'::regclass AND c.relname = 'cron_occurrences_legacy';
  FOR d IN SELECT g::date FROM generate_series((now() AT TIME ZONE 'UTC')::date - back, (now() AT TIME ZONE 'UTC')::date + days, interval '1 day') g LOOP
    lo := d::timestamp AT TIME ZONE 'UTC';
    hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
    part := 'cron_occurrences_p' || to_char(d, 'YYYYMMDD');
    CONTINUE WHEN to_regclass(part) IS NOT NULL OR (covered IS NOT NULL AND hi <= covered);
    IF covered IS NOT NULL AND lo < covered THEN
      lo := covered;
    END IF;
    IF to_regclass('cron_occurrences_default') IS NOT NULL THEN
      -- Taken first, no row can land there meanwhile.
      LOCK TABLE cron_occurrences_default IN ACCESS EXCLUSIVE MODE;
      SELECT max(scheduled_for) INTO newest FROM cron_occurrences_default WHERE scheduled_for >= lo AND scheduled_for < hi;
      IF newest IS NOT NULL THEN
        lo := newest + interval '1 microsecond';
      END IF;
    END IF;
    CONTINUE WHEN lo >= hi;
    EXECUTE format('CREATE TABLE %I (LIKE cron_occurrences INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', part);
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (scheduled_for >= %L::timestamptz AND scheduled_for < %L::timestamptz)', part, part || '_range', lo, hi);
    EXECUTE format('ALTER TABLE cron_occurrences ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    made := made + 1;
  END LOOP;
  RETURN made;
END $$;

-- Step 3 (one short transaction): the switch. Answers what it did or why it waits.
CREATE OR REPLACE FUNCTION agentcron_ledger_partition(min_version integer, days_ahead integer) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  cutover timestamptz;
  old_processes integer;
  owner_name name;
  r record;
  indexes text[] := '{}';
  constraints text[] := '{}';
  def text;
BEGIN
  -- One at a time (a release and the ledger_partitions job on several workers): the state is read after it.
  PERFORM pg_advisory_xact_lock(7245019);
  IF (SELECT relkind FROM pg_class WHERE oid = 'cron_occurrences'::regclass) = 'p' THEN
    RETURN 'partitioned';
  END IF;
  cutover := agentcron_ledger_cutover(true);
  IF cutover IS NULL THEN
    RETURN 'waiting: the cutover constraint is not validated yet';
  END IF;
  IF cutover < now() + interval '1 hour' THEN
    RETURN format('waiting: cutover %s is too near, prepare moves it', cutover);
  END IF;
  SELECT count(*) INTO old_processes FROM agentcron_processes
   WHERE stopped_at IS NULL AND last_seen_at > now() - interval '5 minutes' AND coalesce(schema_version, 0) < min_version;
  IF old_processes > 0 THEN
    RETURN format('waiting: %s live process(es) predate migration %s (they settle ledger rows by ctid alone)', old_processes, min_version);
  END IF;

  -- The old table's indexes and unique constraints, to be made again on the parent by their names.
  FOR r IN SELECT ic.relname AS name, pg_get_indexdef(i.indexrelid) AS def, con.conname, pg_get_constraintdef(con.oid) AS condef
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
            WHERE i.indrelid = 'cron_occurrences'::regclass
            ORDER BY ic.relname LOOP
    IF r.conname IS NOT NULL THEN
      constraints := constraints || format('ALTER TABLE cron_occurrences ADD CONSTRAINT %I %s', r.conname, r.condef);
      EXECUTE format('ALTER TABLE cron_occurrences RENAME CONSTRAINT %I TO %I', r.conname, left(r.conname, 48) || '_legacy');
    ELSE
      indexes := indexes || r.def;
      EXECUTE format('ALTER INDEX %I RENAME TO %I', r.name, left(r.name, 48) || '_legacy');
    END IF;
  END LOOP;
  SELECT pg_get_userbyid(relowner) INTO owner_name FROM pg_class WHERE oid = 'cron_occurrences'::regclass;
  ALTER TABLE cron_occurrences RENAME TO cron_occurrences_legacy;

  CREATE TABLE cron_occurrences (LIKE cron_occurrences_legacy INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)
    PARTITION BY RANGE (scheduled_for);
  ALTER TABLE cron_occurrences DROP CONSTRAINT cron_occurrences_before_cutover;
  EXECUTE format('ALTER TABLE cron_occurrences OWNER TO %I', owner_name);
  FOR r IN SELECT grantee, privilege_type FROM information_schema.role_table_grants
            WHERE table_schema = current_schema() AND table_name = 'cron_occurrences_legacy' AND grantee <> owner_name LOOP
    EXECUTE format('GRANT %s ON cron_occurrences TO %s', r.privilege_type, CASE WHEN r.grantee = 'PUBLIC' THEN 'PUBLIC' ELSE quote_ident(r.grantee) END);
  END LOOP;
  -- pg_get_indexdef names the table cron_occurrences: now the parent (empty: each index is made at once).
  FOREACH def IN ARRAY constraints LOOP
    EXECUTE def;
  END LOOP;
  FOREACH def IN ARRAY indexes LOOP
    EXECUTE def;
  END LOOP;
  -- The validated CHECK proves the range: no scan. Each index of the legacy table matching one of
  -- the parent's is attached to it, not built.
  EXECUTE format('ALTER TABLE cron_occurrences ATTACH PARTITION cron_occurrences_legacy FOR VALUES FROM (MINVALUE) TO (%L)', cutover);
  CREATE TABLE cron_occurrences_default PARTITION OF cron_occurrences DEFAULT;
  PERFORM agentcron_ledger_partitions_ahead(days_ahead);
  RETURN format('partitioned at cutover %s', cutover);
END $$;
