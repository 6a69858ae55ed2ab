import type pg from 'pg';
import type { ApiCall } from './api.ts';
import type { Death } from './cluster.ts';
import type { Kind, Span } from './driver.ts';
import { PLANNED_FAILURE, failurePlan } from './plan.ts';

// The torture checker: reads the database once everything has settled and verifies agentcron's
// promises, Jepsen-style, from what the system wrote (ledger, runs, pg-boss jobs) and what the
// agent and the run log recorded (test/support/torture/recording.ts). Every check is a pure
// function of those rows and of the driver's own records (API answers, kills, spans), so the
// same database always gives the same verdict.
//
// Flow control (docs/flow-control.md): an attempt that failed retryably and was retried is not a
// re-execution; every other second execution of one attempt still needs a dead worker. Each
// occurrence's outcome is recorded once, its cron's last_run_* names only final outcomes, its
// ledger row's attempt_log lists every earlier attempt (as the failure plan of its key says, see
// plan.ts), no attempt starts before its retry_at, and no limit ever had more executions at once
// (or more starts in a window) than it allows.

export interface CheckedCron {
  cron_id: string;
  kind: Kind;
  thread_id: string | null;
  /** DELETE /runs/crons/{id} deletes the cron's ledger with it (by design); a deleted thread takes the cron by cascade. */
  deletedBy?: 'cron' | 'thread' | null;
  /** Spans in which only the scheduler moved the cron: no gap allowed between ledger rows inside. */
  windows: Span[];
  /** Its runs fail the attempts their key's plan says (plan.ts); absent: never. */
  failPlan?: boolean;
  /** max_attempts of its runs' retry policy (needed with failPlan). */
  maxAttempts?: number;
  /** Names of the limits its runs are subject to. */
  limits?: string[];
}

/** A limit the checker holds executions to: those of its graph or of its assistant. */
export interface CheckedLimit {
  name: string;
  max_concurrency: number | null;
  rate: { runs: number; per_seconds: number } | null;
  graph_id?: string;
  assistant_id?: string;
}

export interface CheckInput {
  pool: Pick<pg.Pool, 'query'>;
  crons: CheckedCron[];
  deaths: Death[];
  calls: ApiCall[];
  /** Spans in which the database was down (bench/db-restarts.ts): re-executions they explain are counted apart. */
  outages?: Span[];
  /** Schema of pg-boss's tables. */
  pgbossSchema?: string;
  /** Whether the settle wait ended with nothing active (else it timed out). */
  settled?: boolean;
  /** Limits to hold the executions to. */
  limits?: CheckedLimit[];
}

export interface Reexecution {
  idempotency_key: string;
  run_id: string;
  attempt: number;
  reason: string;
  explained: boolean;
  /** Explained by pg-boss failing the previous attempt's job (its heartbeat lapsed) while its worker lived. */
  lapsed?: boolean;
}

/** A run job pg-boss failed while a worker held it (recording.ts: torture_job_failures). */
export interface JobFailure {
  run_id: string;
  retry_count: number;
  started_on: Date | null;
  /** pg-boss's reason, e.g. "job heartbeat timeout". */
  why: string | null;
  at: Date;
}

export interface Report {
  counts: Record<string, number>;
  /** One line per broken promise; empty when every check passed. */
  failures: string[];
  reexecutions: Reexecution[];
  /** `# torture: crons=… occurrences=… …` */
  summary: string;
}

const TERMINAL = new Set(['success', 'error', 'timeout', 'interrupted']);
const SKIP_REASONS = new Set(['missed', 'overlap', 'end_time']);
const SERIALIZED: Kind[] = ['thread_enqueue', 'thread_reject', 'thread_interrupt', 'overlap_buffer_one'];
const EXAMPLES = 5;

export interface LogRow {
  run_id: string;
  cron_id: string | null;
  scheduled_for: Date | null;
  sf_us: string | null;
  thread_id: string;
  deleted_at: Date | null;
  deleted_xact_at?: Date | null;
  deleted_status: string | null;
}

export interface LedgerRow {
  cron_id: string;
  scheduled_for: Date;
  sf_us: string;
  run_id: string | null;
  trigger: string;
  status: string;
  reason: string | null;
  error: string | null;
  started_at: Date | null;
  attempt_log: AttemptEntry[] | null;
}

export interface AttemptEntry {
  attempt: number;
  started_at: string | null;
  ended_at: string;
  status: string;
  error: { error: string; message: string } | null;
  retry_at: string;
}

export interface ExecRow {
  id: string;
  idempotency_key: string;
  run_id: string;
  cron_id: string | null;
  thread_id: string | null;
  pid: number;
  started_at: Date;
  ended_at: Date | null;
  outcome: string | null;
  graph_id: string | null;
  assistant_id: string | null;
  attempt: number | null;
}

const occ = (cronId: string, sfUs: string) => `${cronId}@${sfUs}`;
const iso = (d: Date | number) => new Date(d).toISOString();

function examples<T>(xs: T[], show: (x: T) => string): string {
  const shown = xs.slice(0, EXAMPLES).map(show).join('; ');
  return xs.length > EXAMPLES ? `${shown}; … (${xs.length - EXAMPLES} more)` : shown;
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const k = key(x);
    const list = m.get(k);
    if (list) list.push(x);
    else m.set(k, [x]);
  }
  return m;
}

export async function check(input: CheckInput): Promise<Report> {
  const { pool } = input;
  const schema = input.pgbossSchema ?? 'pgboss';
  const failures: string[] = [];
  const counts: Record<string, number> = {};
  const fail = (what: string, xs: unknown[], detail: string) => {
    if (xs.length) failures.push(`${what}: ${xs.length} (${detail})`);
  };

  const logged = (
    await pool.query<LogRow>(
      `SELECT run_id, cron_id, scheduled_for, (extract(epoch FROM scheduled_for) * 1000000)::bigint::text AS sf_us,
              thread_id, deleted_at, deleted_xact_at, deleted_status
         FROM torture_run_log ORDER BY seq`,
    )
  ).rows;
  // An occurrence fired ahead of its instant (CRON_LOOKAHEAD_MS) and withdrawn by a change of its
  // cron before it (docs/scheduling.md): its run was deleted still pending, before its
  // scheduled_for, with its ledger row and job, as if never fired; the occurrence may fire again
  // (the same run id) under the new definition. Nothing else deletes a pending run (a thread's or
  // an assistant's deletion ends its runs first). Such a run is not one of the occurrence's runs.
  // Before its instant: the withdrawing transaction began before it (it decides under the run's
  // lock on the clock; the delete itself may come a moment after the instant).
  const withdrawn = (r: LogRow) =>
    r.deleted_status === 'pending' && !!r.deleted_xact_at && r.scheduled_for !== null && r.deleted_xact_at.getTime() < r.scheduled_for.getTime();
  const runLog = logged.filter((r) => !withdrawn(r));
  counts.withdrawn = logged.length - runLog.length;
  const ledger = (
    await pool.query<LedgerRow>(
      `SELECT cron_id, scheduled_for, (extract(epoch FROM scheduled_for) * 1000000)::bigint::text AS sf_us,
              run_id, trigger, status, reason, error, started_at, attempt_log
         FROM cron_occurrences`,
    )
  ).rows;
  const runsNow = (
    await pool.query<{ run_id: string; status: string; cron_id: string | null; waiting: string | null; not_before: Date | null }>(
      `SELECT run_id, status, cron_id, waiting, not_before FROM runs`,
    )
  ).rows;
  const jobs = (
    await pool.query<{ id: string; state: string; retry_count: number; start_after: Date }>(
      `SELECT id, state::text AS state, retry_count, start_after FROM ${schema}.job WHERE name = 'agentcron.run'`,
    )
  ).rows;
  const execs = (await pool.query<ExecRow>(`SELECT * FROM torture_executions ORDER BY started_at, id`)).rows;
  // Recorded once pg-boss's schema exists (run.ts); absent in a database set up otherwise.
  const recorded = (await pool.query<{ t: string | null }>(`SELECT to_regclass('torture_job_failures')::text AS t`)).rows[0]?.t;
  const jobFailures = recorded
    ? (await pool.query<JobFailure>(`SELECT run_id, retry_count, started_on, output->'value'->>'message' AS why, at FROM torture_job_failures ORDER BY seq`))
        .rows
    : [];
  const liveCrons = new Set((await pool.query<{ cron_id: string }>(`SELECT cron_id FROM crons`)).rows.map((r) => r.cron_id));

  const kindOf = new Map(input.crons.map((c) => [c.cron_id, c.kind]));
  const runById = new Map(runLog.map((r) => [r.run_id, r]));
  const runNow = new Map(runsNow.map((r) => [r.run_id, r]));
  const ledgerByOcc = new Map(ledger.map((l) => [occ(l.cron_id, l.sf_us), l]));

  // ---- API ----
  const calls = input.calls;
  const fiveXX = calls.filter((c) => c.status >= 500);
  const noAnswer = calls.filter((c) => c.status === 0);
  const unexpected = calls.filter((c) => c.verdict === 'unexpected' && c.status >= 400 && c.status < 500);
  counts.api_calls = calls.length;
  counts['5xx'] = fiveXX.length;
  counts.api_no_answer = noAnswer.length;
  counts.api_4xx_explained = calls.filter((c) => c.verdict === 'explained').length;
  counts.api_4xx_unexpected = unexpected.length;
  const showCall = (c: ApiCall) => `${c.method} ${c.path} → ${c.status || 'no answer'} ${c.detail ?? ''}`.trim();
  fail('API answers 5xx', fiveXX, examples(fiveXX, showCall));
  fail('API calls without an answer', noAnswer, examples(noAnswer, showCall));
  fail(
    'API 4xx no race explains',
    unexpected,
    examples(unexpected, (c) => `${showCall(c)} [${c.why}]`),
  );

  // ---- runs: at most one per occurrence, ever; one pg-boss job each ----
  const cronRuns = runLog.filter((r) => r.cron_id && r.sf_us);
  counts.runs = runLog.length;
  const dupOcc = [...groupBy(cronRuns, (r) => occ(r.cron_id!, r.sf_us!)).entries()].filter(([, rs]) => rs.length > 1);
  counts.duplicate_runs = dupOcc.reduce((n, [, rs]) => n + rs.length - 1, 0);
  fail(
    'occurrences with more than one run',
    dupOcc,
    examples(dupOcc, ([k, rs]) => `${k}: ${rs.map((r) => r.run_id).join(', ')}`),
  );
  const reinserted = [...groupBy(runLog, (r) => r.run_id).entries()].filter(([, rs]) => rs.length > 1);
  fail(
    'runs inserted again after being deleted',
    reinserted,
    examples(reinserted, ([id, rs]) => `${id} ×${rs.length}`),
  );

  counts.jobs = jobs.length;
  const dupJobs = [...groupBy(jobs, (j) => j.id).entries()].filter(([, js]) => js.length > 1);
  fail(
    'runs with more than one pg-boss job',
    dupJobs,
    examples(dupJobs, ([id, js]) => `${id} ×${js.length}`),
  );
  const jobIds = new Set(jobs.map((j) => j.id));
  // A withdrawn run's job that a worker fetched at its instant, just before the withdrawal deleted
  // the run: the withdrawal deletes only waiting jobs, and the worker's claim finds no run and
  // completes the job without executing anything (seen beside burners: fetched 2 ms after its
  // start_after, the run deleted 20 ms later by a transaction begun before the instant).
  const withdrawnIds = new Set(logged.filter(withdrawn).map((r) => r.run_id));
  const orphanJobs = jobs.filter((j) => !runById.has(j.id) && !(withdrawnIds.has(j.id) && j.state === 'completed'));
  fail(
    'pg-boss run jobs with no run',
    orphanJobs,
    examples(orphanJobs, (j) => `${j.id} (${j.state})`),
  );
  const jobless = runLog.filter((r) => !jobIds.has(r.run_id));
  fail(
    'runs with no pg-boss job',
    jobless,
    examples(jobless, (r) => r.run_id),
  );

  // ---- the ledger ----
  counts.occurrences = ledger.length;
  counts.fired = ledger.filter((l) => l.run_id).length;
  counts.skipped = ledger.filter((l) => l.status === 'skipped').length;
  for (const reason of SKIP_REASONS) counts[`skipped_${reason}`] = ledger.filter((l) => l.status === 'skipped' && l.reason === reason).length;
  for (const status of TERMINAL) counts[`ledger_${status}`] = ledger.filter((l) => l.status === status).length;

  const allOpen = ledger.filter((l) => l.status === 'enqueued' || l.status === 'running');
  counts.unsettled = allOpen.length;
  for (const [open, whose] of [
    [allOpen.filter((l) => liveCrons.has(l.cron_id)), 'of live crons'],
    [allOpen.filter((l) => !liveCrons.has(l.cron_id)), 'of deleted crons'],
  ] as const) {
    if (open.length === 0) continue;
    const why = (l: LedgerRow): string => {
      const cron = liveCrons.has(l.cron_id) ? 'live cron' : 'deleted cron';
      const now = l.run_id ? runNow.get(l.run_id) : undefined;
      const logged = l.run_id ? runById.get(l.run_id) : undefined;
      if (now) return `${cron}, run ${now.status}`;
      if (logged?.deleted_at) return `${cron}, run deleted while ${logged.deleted_status}`;
      return `${cron}, run never existed`;
    };
    const byWhy = groupBy(open, why);
    failures.push(
      `ledger rows ${whose} still enqueued/running after settle: ${open.length} (${[...byWhy.entries()].map(([w, ls]) => `${ls.length}× ${w}`).join(', ')}; ` +
        `e.g. ${examples(open, (l) => `${l.cron_id}@${iso(l.scheduled_for)} ${l.status} [${why(l)}]`)})`,
    );
  }
  const invalid = ledger.filter(
    (l) => !(TERMINAL.has(l.status) || l.status === 'enqueued' || l.status === 'running' || (l.status === 'skipped' && SKIP_REASONS.has(l.reason ?? ''))),
  );
  fail(
    'ledger rows with an unknown status or a skip without a known reason',
    invalid,
    examples(invalid, (l) => `${l.cron_id}@${iso(l.scheduled_for)} ${l.status}/${l.reason}`),
  );
  const runOccs = new Set(cronRuns.map((r) => occ(r.cron_id!, r.sf_us!)));
  const skippedWithRun = ledger.filter((l) => l.status === 'skipped' && (l.run_id || runOccs.has(occ(l.cron_id, l.sf_us))));
  fail(
    'skipped occurrences that have a run',
    skippedWithRun,
    examples(skippedWithRun, (l) => `${l.cron_id}@${iso(l.scheduled_for)}`),
  );
  const ghostRun = ledger.filter((l) => l.run_id && !runById.has(l.run_id));
  fail(
    'ledger rows naming a run never created',
    ghostRun,
    examples(ghostRun, (l) => `${l.cron_id}@${iso(l.scheduled_for)} → ${l.run_id}`),
  );
  const wrongRun = ledger.filter((l) => {
    const r = l.run_id ? runById.get(l.run_id) : undefined;
    return r && (r.cron_id !== l.cron_id || r.sf_us !== l.sf_us);
  });
  fail(
    'ledger rows naming the run of another occurrence',
    wrongRun,
    examples(wrongRun, (l) => `${l.cron_id}@${iso(l.scheduled_for)} → ${l.run_id}`),
  );
  // Deleting a cron deletes its ledger (by design): its runs are not expected to have rows.
  const ledgerDeleted = new Set(input.crons.filter((c) => c.deletedBy === 'cron').map((c) => c.cron_id));
  const unledgered = cronRuns.filter((r) => !ledgerDeleted.has(r.cron_id!) && !ledgerByOcc.has(occ(r.cron_id!, r.sf_us!)));
  fail(
    'cron runs without a ledger row',
    unledgered,
    examples(unledgered, (r) => `${r.run_id} (${r.cron_id}@${iso(r.scheduled_for!)})`),
  );
  const disagree = ledger.filter((l) => {
    const r = l.run_id ? runNow.get(l.run_id) : undefined;
    return r && TERMINAL.has(r.status) && TERMINAL.has(l.status) && r.status !== l.status;
  });
  fail(
    'ledger rows disagreeing with their ended run',
    disagree,
    examples(disagree, (l) => `${l.run_id}: ledger ${l.status}, run ${runNow.get(l.run_id!)!.status}`),
  );

  // ---- no run left pending or running ----
  const stuck = runsNow.filter((r) => r.status === 'pending' || r.status === 'running');
  counts.stuck_runs = stuck.length;
  fail(
    'runs still pending/running after settle',
    stuck,
    // What each waits for: its park (runs.waiting, not_before) and its job (state, attempt, start_after).
    examples(stuck, (r) => {
      const job = jobs.find((j) => j.id === r.run_id);
      const job_ = job ? `job ${job.state} #${job.retry_count} start_after ${job.start_after.toISOString()}` : 'no job';
      return `${r.run_id} ${r.status} waiting ${r.waiting ?? '-'} not_before ${r.not_before?.toISOString() ?? '-'}, ${job_}`;
    }),
  );

  // ---- executions: one per idempotency key, unless a dead worker explains a retry ----
  counts.executions = execs.length;
  const deathOf = new Map<number, Death>();
  for (const d of input.deaths) if (d.role === 'worker') deathOf.set(d.pid, d);
  const noRun = execs.filter((e) => !runById.has(e.run_id));
  fail(
    'executions of a run never created',
    noRun,
    examples(noRun, (e) => `${e.run_id} on pid ${e.pid}`),
  );
  // The key's format is the system's own business; what matters is one key per occurrence, the same on every attempt.
  const occOf = (e: ExecRow): string => {
    const r = runById.get(e.run_id)!;
    return occ(r.cron_id!, r.sf_us!);
  };
  const keyOccs = [
    ...groupBy(
      execs.filter((e) => runById.get(e.run_id)?.sf_us),
      (e) => e.idempotency_key,
    ).entries(),
  ].filter(([, es]) => new Set(es.map(occOf)).size > 1);
  fail(
    'idempotency keys shared by different occurrences',
    keyOccs,
    examples(keyOccs, ([k, es]) => `${k}: runs ${[...new Set(es.map((e) => e.run_id))].join(', ')}`),
  );
  const runKeys = [...groupBy(execs, (e) => e.run_id).entries()].filter(([, es]) => new Set(es.map((e) => e.idempotency_key)).size > 1);
  fail(
    'runs whose attempts got different idempotency keys',
    runKeys,
    examples(runKeys, ([id, es]) => `${id}: ${[...new Set(es.map((e) => e.idempotency_key))].join(', ')}`),
  );
  const notLedgered = execs.filter((e) => {
    const r = runById.get(e.run_id);
    return r?.cron_id && r.sf_us && ledgerByOcc.get(occ(r.cron_id, r.sf_us))?.status === 'skipped';
  });
  fail(
    'executions of a skipped occurrence',
    notLedgered,
    examples(notLedgered, (e) => e.idempotency_key),
  );

  const byKey = groupBy(execs, (e) => e.idempotency_key);
  const { reexecutions, policyRetries } = judgeReexecutions(byKey, deathOf, input.outages ?? [], jobFailures);
  counts.keys_executed = byKey.size;
  counts.policy_retries = policyRetries;
  // One attempt executed twice: each such pair went through the check above (a dead worker explains it).
  counts.attempts_executed_twice = [
    ...groupBy(
      execs.filter((e) => e.attempt !== null),
      (e) => `${e.idempotency_key}#${e.attempt}`,
    ).values(),
  ].filter((es) => es.length > 1).length;
  counts.reexecutions = reexecutions.length;
  counts.retries_explained = reexecutions.filter((r) => r.explained).length;
  counts.reexecutions_lapsed = reexecutions.filter((r) => r.explained && r.lapsed).length;
  counts.reexecutions_outage = reexecutions.filter((r) => !r.explained && r.reason.startsWith('database outage')).length;
  const unexplainedRe = reexecutions.filter((r) => !r.explained);
  counts.reexecutions_unexplained = unexplainedRe.length;
  fail(
    're-executions no dead worker explains',
    unexplainedRe,
    examples(unexplainedRe, (r) => `${r.idempotency_key} attempt ${r.attempt}: ${r.reason}`),
  );

  const executedRuns = new Set(execs.map((e) => e.run_id));
  const successNoExec = ledger.filter((l) => l.status === 'success' && l.run_id && !executedRuns.has(l.run_id));
  fail(
    'successful occurrences whose agent never ran',
    successNoExec,
    examples(successNoExec, (l) => `${l.cron_id}@${iso(l.scheduled_for)}`),
  );

  // ---- serialized runs never overlap: a thread's runs, a buffer_one cron's runs ----
  const serialKey = (e: ExecRow): string | null => {
    const kind = e.cron_id ? kindOf.get(e.cron_id) : undefined;
    if (!kind || !SERIALIZED.includes(kind)) return null;
    return kind === 'overlap_buffer_one' ? `cron ${e.cron_id}` : `thread ${e.thread_id}`;
  };
  const endOf = (e: ExecRow): number | null => {
    if (e.ended_at) return e.ended_at.getTime();
    const death = deathOf.get(e.pid);
    return death ? death.at.getTime() : null;
  };
  const overlaps: string[] = [];
  for (const [group, es] of groupBy(
    execs.filter((e) => serialKey(e) !== null),
    (e) => serialKey(e)!,
  )) {
    let last: ExecRow | null = null;
    let lastEnd = -Infinity;
    for (const e of es) {
      const end = endOf(e);
      if (end === null) continue; // its end was never recorded and its worker did not die: unknown
      if (last && e.started_at.getTime() < lastEnd) {
        const kind = kindOf.get(e.cron_id!);
        const how = (x: ExecRow) => x.outcome ?? (deathOf.has(x.pid) ? 'worker killed' : 'no outcome');
        overlaps.push(
          `${kind} ${group}: ${last.run_id} (pid ${last.pid}, ${how(last)}, ${iso(last.started_at)}..${iso(lastEnd)}) and ${e.run_id} (pid ` +
            `${e.pid}, ${how(e)}, from ${iso(e.started_at)})`,
        );
      }
      if (end > lastEnd) {
        lastEnd = end;
        last = e;
      }
    }
  }
  counts.overlaps = overlaps.length;
  fail(
    'overlapping executions of runs that must not overlap (one thread, or one buffer_one cron)',
    overlaps,
    examples(overlaps, (s) => s),
  );

  // ---- no occurrence lost: inside each span only the scheduler moved a cron, every second between its first and last row has one ----
  const scheduledByCron = groupBy(
    ledger.filter((l) => l.trigger === 'schedule'),
    (l) => l.cron_id,
  );
  // A manual trigger whose instant falls exactly on a scheduled second (its millisecond is .000) IS
  // that occurrence (cron_id, scheduled_for): it fires once, recorded with trigger manual. So any
  // row covers its second; the spans are measured on the scheduled rows alone.
  const coveredByCron = groupBy(ledger, (l) => l.cron_id);
  const lost: string[] = [];
  let spanSeconds = 0;
  for (const cron of input.crons) {
    const seconds = new Set((scheduledByCron.get(cron.cron_id) ?? []).map((l) => l.scheduled_for.getTime()));
    const covered = new Set((coveredByCron.get(cron.cron_id) ?? []).map((l) => l.scheduled_for.getTime()));
    for (const w of cron.windows) {
      const inside = [...seconds].filter((t) => t >= w.from && t <= w.to).sort((a, b) => a - b);
      if (inside.length < 2) continue;
      spanSeconds += (inside[inside.length - 1] - inside[0]) / 1000;
      for (let t = inside[0]; t <= inside[inside.length - 1]; t += 1000) {
        if (!covered.has(t)) lost.push(`${cron.cron_id} (${cron.kind}) ${iso(t)}`);
      }
    }
  }
  counts.gap_checked_seconds = spanSeconds;
  counts.lost_occurrences = lost.length;
  fail(
    'lost occurrences (a second with no ledger row between two that have one, while only the scheduler moved the cron)',
    lost,
    examples(lost, (s) => s),
  );

  checkFlow(input, { ledger, execs, deathOf, runById, fail, counts });
  await checkFlowLogs({ pool, ledger, fail, counts });

  // ---- processes ----
  const crashes = input.deaths.filter((d) => d.cause !== 'killed');
  counts.kills_worker = input.deaths.filter((d) => d.cause === 'killed' && d.role === 'worker').length;
  counts.kills_scheduler = input.deaths.filter((d) => d.cause === 'killed' && d.role === 'scheduler').length;
  counts.crashes = crashes.filter((d) => d.cause === 'crashed').length;
  counts.failed_starts = crashes.filter((d) => d.cause === 'failed_start').length;
  fail(
    'processes that exited unexpectedly',
    crashes,
    examples(crashes, (d) => `${d.role} pid ${d.pid} ${d.cause} (${d.code}) at ${iso(d.at)}: ${d.tail.slice(-2).join(' | ').slice(0, 300)}`),
  );
  if (input.settled === false) failures.push('the system did not settle in time (runs or ledger rows still active)');

  counts.crons = input.crons.length;
  counts.crons_live = input.crons.filter((c) => liveCrons.has(c.cron_id)).length;
  const summary =
    `# torture: crons=${counts.crons} occurrences=${counts.occurrences} fired=${counts.fired} skipped=${counts.skipped} runs=${counts.runs} ` +
    `jobs=${counts.jobs} executions=${counts.executions} reexecutions=${counts.reexecutions} retries_explained=${counts.retries_explained} ` +
    `lapsed=${counts.reexecutions_lapsed} ` +
    `unexplained=${counts.reexecutions_unexplained} kills=${counts.kills_worker}w+${counts.kills_scheduler}s crashes=${counts.crashes} ` +
    `api_calls=${counts.api_calls} 5xx=${counts['5xx']} 4xx_explained=${counts.api_4xx_explained} 4xx_unexpected=${counts.api_4xx_unexpected} ` +
    `dup_runs=${counts.duplicate_runs} unsettled=${counts.unsettled} stuck=${counts.stuck_runs} lost=${counts.lost_occurrences} ` +
    `gap_checked_s=${counts.gap_checked_seconds} overlaps=${counts.overlaps} policy_retries=${counts.policy_retries} ` +
    `attempts_twice=${counts.attempts_executed_twice} retried_occurrences=${counts.retried_occurrences} exhausted=${counts.retries_exhausted} ` +
    `limit_peaks=${(input.limits ?? [])
      .map((l) => `${l.name.replace(/^assistant:.*/, 'assistant')}:${counts[`limit_peak_${l.name}`]}/${l.max_concurrency}`)
      .join(',')} ` +
    `parked=${counts.parked_limit} retry_waits=${counts.retry_waits} failures=${failures.length}`;
  return { counts, failures, reexecutions, summary };
}

const ENDED_BY_AGENT = new Set(['success', 'error']);

export interface FlowData {
  ledger: LedgerRow[];
  execs: ExecRow[];
  deathOf: Map<number, Death>;
  runById: Map<string, LogRow>;
  fail: (what: string, xs: unknown[], detail: string) => void;
  counts: Record<string, number>;
  pool: Pick<pg.Pool, 'query'>;
}

/** Retries as the ledger shows them and as the agents executed them; limits as the executions overlapped. */
export function checkFlow(input: Pick<CheckInput, 'crons' | 'limits'>, d: Omit<FlowData, 'pool'>): void {
  const { ledger, execs, deathOf, runById, fail, counts } = d;
  const cronOf = new Map(input.crons.map((c) => [c.cron_id, c]));
  const execsByOcc = groupBy(
    execs.filter((e) => runById.get(e.run_id)?.sf_us),
    (e) => {
      const r = runById.get(e.run_id)!;
      return occ(r.cron_id!, r.sf_us!);
    },
  );

  // ---- one run per occurrence across its attempts ----
  const splitRuns = [...execsByOcc.entries()].filter(([, es]) => new Set(es.map((e) => e.run_id)).size > 1);
  fail(
    'occurrences whose attempts ran under different runs',
    splitRuns,
    examples(splitRuns, ([k, es]) => `${k}: ${[...new Set(es.map((e) => e.run_id))].join(', ')}`),
  );

  // ---- attempt_log: every earlier attempt, numbered, the agent's planned failures, as the plan says ----
  const badLog: string[] = [];
  const badAttempts: string[] = [];
  const offPlan: string[] = [];
  const early: string[] = [];
  let retried = 0;
  let exhausted = 0;
  for (const l of ledger) {
    const log = l.attempt_log ?? [];
    const n = log.length;
    const what = `${l.cron_id}@${iso(l.scheduled_for)} ${l.status}`;
    if (n) retried++;
    log.forEach((a, i) => {
      if (a.attempt !== i + 1 || a.status !== 'error' || a.error?.error !== 'RetryableError' || !a.error.message.startsWith(PLANNED_FAILURE) || !a.retry_at) {
        badLog.push(`${what}: entry ${i + 1} ${JSON.stringify(a)}`);
      }
    });
    const es = execsByOcc.get(occ(l.cron_id, l.sf_us)) ?? [];
    const attempts = [...new Set(es.flatMap((e) => (e.attempt === null ? [] : [e.attempt])))].sort((a, b) => a - b);
    if (attempts.length) {
      const max = attempts[attempts.length - 1];
      const contiguous = attempts.every((a, i) => a === i + 1);
      // Each attempt before the last failed retryably (else nothing would have retried it).
      const unfailed = attempts.filter((a) => a < max && !es.some((e) => e.attempt === a && e.outcome === 'retryable'));
      const byAgent = ENDED_BY_AGENT.has(l.status) && (l.status === 'success' || (l.error ?? '').startsWith(PLANNED_FAILURE));
      // An end by the agent was its last attempt: every earlier one is logged. A cancel may come while a retry waits.
      const logged = byAgent ? max === n + 1 : max === n + 1 || max === n;
      if (!contiguous || unfailed.length || !logged) {
        badAttempts.push(`${what}: attempts executed [${attempts.join(',')}], attempt_log ${n}${unfailed.length ? `, not failed: ${unfailed.join(',')}` : ''}`);
      }
    }
    // No attempt started before the retry_at its predecessor was given (50 ms: clock resolution).
    for (const a of log) {
      const next = es.filter((e) => e.attempt === a.attempt + 1).sort((x, y) => x.started_at.getTime() - y.started_at.getTime())[0];
      if (next && next.started_at.getTime() < Date.parse(a.retry_at) - 50)
        early.push(`${what}: attempt ${a.attempt + 1} started ${iso(next.started_at)}, retry_at ${a.retry_at}`);
    }
    const cron = cronOf.get(l.cron_id);
    const key = es[0]?.idempotency_key;
    if (!cron || !key) continue;
    if (!cron.failPlan) {
      if (n) offPlan.push(`${what}: no failure planned, attempt_log ${n}`);
      continue;
    }
    const plan = failurePlan(key);
    const m = cron.maxAttempts ?? 3;
    if (l.status === 'success' && (plan.fails >= m || n !== plan.fails)) offPlan.push(`${what}: plan fails ${plan.fails} of ${m} attempts, attempt_log ${n}`);
    if (l.status === 'error' && (l.error ?? '').startsWith(PLANNED_FAILURE)) {
      exhausted++;
      if (plan.fails < m || n !== m - 1) offPlan.push(`${what}: plan fails ${plan.fails} of ${m} attempts, attempt_log ${n}`);
    }
  }
  counts.retried_occurrences = retried;
  counts.retries_exhausted = exhausted;
  fail(
    'attempt_log entries that are not the earlier attempts in order, each a planned RetryableError',
    badLog,
    examples(badLog, (s) => s),
  );
  fail(
    'occurrences whose executed attempts disagree with their attempt_log (skipped, unfailed or unlogged attempts)',
    badAttempts,
    examples(badAttempts, (s) => s),
  );
  fail(
    'occurrences whose outcome and attempt_log disagree with their failure plan and retry policy',
    offPlan,
    examples(offPlan, (s) => s),
  );
  fail(
    'attempts started before their retry_at',
    early,
    examples(early, (s) => s),
  );

  // ---- limits: executions at once, starts per window ----
  for (const limit of input.limits ?? []) {
    const subject = execs.filter((e) => (limit.graph_id && e.graph_id === limit.graph_id) || (limit.assistant_id && e.assistant_id === limit.assistant_id));
    counts[`limit_executions_${limit.name}`] = subject.length;
    if (limit.max_concurrency !== null) {
      // An execution ends when it recorded its end or its worker died; unknown ends are left out.
      const spans = subject.flatMap((e) => {
        const death = deathOf.get(e.pid);
        const end = e.ended_at?.getTime() ?? (death && death.at.getTime() >= e.started_at.getTime() ? death.at.getTime() : null);
        return end === null ? [] : [{ e, from: e.started_at.getTime(), to: end }];
      });
      const events = spans.flatMap((s) => [
        { t: s.from, d: 1, s },
        { t: s.to, d: -1, s },
      ]);
      // Ends before starts at the same instant.
      events.sort((a, b) => a.t - b.t || a.d - b.d);
      const active = new Set<(typeof spans)[number]>();
      let peak = 0;
      const over: string[] = [];
      for (const ev of events) {
        if (ev.d < 0) {
          active.delete(ev.s);
          continue;
        }
        active.add(ev.s);
        peak = Math.max(peak, active.size);
        if (active.size > limit.max_concurrency) {
          over.push(
            `${active.size} at ${iso(ev.t)}: ` +
              [...active]
                .map(
                  (x) =>
                    `${x.e.run_id.slice(0, 8)}#${x.e.attempt} pid ${x.e.pid} ${x.e.outcome ?? 'no outcome'} ${iso(x.from).slice(11)}..${iso(x.to).slice(11)}`,
                )
                .join(', '),
          );
        }
      }
      counts[`limit_peak_${limit.name}`] = peak;
      fail(
        `executions of limit ${limit.name} above its max_concurrency ${limit.max_concurrency}`,
        over,
        examples(over, (s) => s),
      );
    }
    if (limit.rate) {
      // Starts as the claims counted them (the database's clock): each attempt's claim on the ledger.
      const crons = new Set(input.crons.filter((c) => c.limits?.includes(limit.name)).map((c) => c.cron_id));
      const starts = ledger
        .filter((l) => crons.has(l.cron_id))
        .flatMap((l) => [
          ...(l.attempt_log ?? []).flatMap((a) => (a.started_at ? [Date.parse(a.started_at)] : [])),
          ...(l.started_at ? [l.started_at.getTime()] : []),
        ])
        .sort((a, b) => a - b);
      const { runs, per_seconds } = limit.rate;
      const tooMany: string[] = [];
      let most = 0;
      for (let i = 0, j = 0; i < starts.length; i++) {
        while (starts[i] - starts[j] >= per_seconds * 1000) j++;
        most = Math.max(most, i - j + 1);
        // 1 ms: the ledger keeps microseconds, a Date milliseconds.
        if (i >= runs && starts[i] - starts[i - runs] < per_seconds * 1000 - 1)
          tooMany.push(`${runs + 1} starts within ${starts[i] - starts[i - runs]} ms ending ${iso(starts[i])}`);
      }
      counts[`limit_starts_${limit.name}`] = starts.length;
      counts[`limit_max_starts_per_window_${limit.name}`] = most;
      fail(
        `starts of limit ${limit.name} above its rate of ${runs} per ${per_seconds} s`,
        tooMany,
        examples(tooMany, (s) => s),
      );
    }
  }
}

/** Outcomes recorded once (the ledger's status log), last_run_* naming final outcomes only, how often runs waited. */
async function checkFlowLogs(d: Pick<FlowData, 'pool' | 'ledger' | 'fail' | 'counts'>): Promise<void> {
  const { pool } = d;
  const ledgerLog = (
    await pool.query<LedgerLogRow>(
      `SELECT cron_id, (extract(epoch FROM scheduled_for) * 1000000)::bigint::text AS sf_us, old_status, new_status FROM torture_ledger_log ORDER BY seq`,
    )
  ).rows;
  const lastRuns = (
    await pool.query<LastRunRow>(
      `SELECT cron_id, (extract(epoch FROM scheduled_for) * 1000000)::bigint::text AS sf_us, status, run_id FROM torture_last_run_log ORDER BY seq`,
    )
  ).rows;
  const waits = (await pool.query<{ waiting: string; n: number }>(`SELECT waiting, count(*)::int AS n FROM torture_waits GROUP BY waiting`)).rows;
  judgeFlowLogs({ ...d, ledgerLog, lastRuns, waits });
}

export interface LedgerLogRow {
  cron_id: string;
  sf_us: string;
  old_status: string | null;
  new_status: string;
}

export interface LastRunRow {
  cron_id: string;
  sf_us: string | null;
  status: string | null;
  run_id: string | null;
}

/** The verdict on the ledger's status log and the crons' last_run_* log (a pure function of their rows). */
export function judgeFlowLogs(
  d: Pick<FlowData, 'ledger' | 'fail' | 'counts'> & { ledgerLog: LedgerLogRow[]; lastRuns: LastRunRow[]; waits: { waiting: string; n: number }[] },
): void {
  const { ledger, fail, counts, ledgerLog, lastRuns, waits } = d;
  counts.parked_limit = waits.filter((w) => w.waiting.startsWith('limit:')).reduce((n, w) => n + w.n, 0);
  counts.retry_waits = waits.filter((w) => w.waiting === 'retry').reduce((n, w) => n + w.n, 0);
  for (const w of waits) if (w.waiting.startsWith('limit:')) counts[`parked_${w.waiting.startsWith('limit:assistant:') ? 'assistant' : w.waiting}`] = w.n;

  const endedTwice = [
    ...groupBy(
      ledgerLog.filter((r) => TERMINAL.has(r.new_status)),
      (r) => occ(r.cron_id, r.sf_us),
    ).entries(),
  ].filter(([, rs]) => rs.length > 1);
  fail(
    'occurrences whose outcome was recorded more than once',
    endedTwice,
    examples(endedTwice, ([k, rs]) => `${k}: ${rs.map((r) => r.new_status).join(' then ')}`),
  );
  // Nothing in the torture reopens an ended occurrence (a retry goes running → enqueued).
  const reopened = ledgerLog.filter((r) => r.old_status && TERMINAL.has(r.old_status));
  fail(
    'ended occurrences that changed status again',
    reopened,
    examples(reopened, (r) => `${occ(r.cron_id, r.sf_us)}: ${r.old_status} → ${r.new_status}`),
  );

  const ledgerByOcc = new Map(ledger.map((l) => [occ(l.cron_id, l.sf_us), l]));
  const named = lastRuns.filter((r) => r.sf_us && r.status);
  const twice = [...groupBy(named, (r) => occ(r.cron_id, r.sf_us!)).entries()].filter(([, rs]) => rs.length > 1);
  fail(
    "occurrences written to their cron's last_run_* more than once",
    twice,
    examples(twice, ([k, rs]) => `${k}: ${rs.map((r) => r.status).join(', ')}`),
  );
  const notFinal = named.filter((r) => {
    const l = ledgerByOcc.get(occ(r.cron_id, r.sf_us!));
    return l && TERMINAL.has(l.status) && l.status !== r.status;
  });
  fail(
    "last_run_* naming an outcome its occurrence did not end with (an attempt's, not the final one)",
    notFinal,
    examples(notFinal, (r) => `${occ(r.cron_id, r.sf_us!)}: last_run ${r.status}, ledger ${ledgerByOcc.get(occ(r.cron_id, r.sf_us!))!.status}`),
  );
  counts.last_run_writes = named.length;
}

/**
 * Every second execution of an idempotency key (executions in start order): the policy's next
 * attempt after a retryable failure, or a re-execution, explained only by the death of the worker
 * of the execution before it (or, apart, by a database outage).
 */
export function judgeReexecutions(
  byKey: Map<string, ExecRow[]>,
  deathOf: Map<number, Death>,
  outages: Span[],
  jobFailures: JobFailure[] = [],
): { reexecutions: Reexecution[]; policyRetries: number } {
  const reexecutions: Reexecution[] = [];
  let policyRetries = 0;
  const failuresOf = groupBy(jobFailures, (f) => f.run_id);
  for (const [key, es] of byKey) {
    for (let i = 1; i < es.length; i++) {
      const e = es[i];
      // The attempt before this one: only its worker dying (after it started, before this one
      // started: a retry that began while that worker was still alive is not explained by its
      // death) explains a new attempt. Its death is observed a moment after the fact: 1 s slack.
      const prev = es[i - 1];
      // The next attempt of the retry policy, after the one before failed retryably: not a re-execution.
      if (e.attempt !== null && prev.attempt !== null && e.attempt === prev.attempt + 1 && prev.outcome === 'retryable') {
        policyRetries++;
        continue;
      }
      // The same, for a retry whose run was deleted (a cancel with rollback, its thread or cron
      // deleted) between its claim and the agent's read of its attempt (null: no row): it began
      // after the previous attempt ended retryably, so it is that attempt's successor.
      if (e.attempt === null && prev.attempt !== null && prev.outcome === 'retryable' && prev.ended_at && e.started_at >= prev.ended_at) {
        policyRetries++;
        continue;
      }
      const death = deathOf.get(prev.pid);
      let reason = '';
      let explained = false;
      if (death && death.at.getTime() >= prev.started_at.getTime() && death.at.getTime() - 1000 <= e.started_at.getTime() && prev.outcome !== 'aborted') {
        const how = death.cause === 'killed' ? 'killed' : 'crashed';
        reason = prev.ended_at ? `worker ${prev.pid} ${how} after the agent returned, before its result was stored` : `worker ${prev.pid} ${how} mid-run`;
        explained = true;
      }
      let lapsed = false;
      if (!explained) {
        // pg-boss took the job from the previous attempt's worker (alive, but its heartbeat
        // lapsed: a stalled worker is a lost one) after that attempt's claim and before this one
        // started: the system's own rule hands the run out again. Counted apart (lapsed=).
        const lost = (failuresOf.get(prev.run_id) ?? []).find(
          (f) =>
            f.started_on &&
            f.started_on.getTime() <= prev.started_at.getTime() &&
            f.at.getTime() >= prev.started_at.getTime() &&
            f.at.getTime() <= e.started_at.getTime(),
        );
        if (lost) {
          reason =
            `pg-boss failed the previous attempt's job (${lost.why ?? 'no reason'}) at ${iso(lost.at)} while worker ${prev.pid} lived ` +
            `(its attempt ${iso(prev.started_at)}, outcome ${prev.outcome ?? 'none'})`;
          explained = lapsed = true;
        }
      }
      if (!explained) {
        const prevEnd = prev.ended_at?.getTime() ?? e.started_at.getTime();
        const outage = outages.find((o) => o.from <= Math.max(prevEnd, e.started_at.getTime()) && o.to >= prev.started_at.getTime());
        if (outage)
          reason =
            `database outage ${iso(outage.from)}..${iso(outage.to)} during or after the previous attempt (worker ${prev.pid} alive, ` +
            `outcome ${prev.outcome ?? 'none'})`;
        else
          reason =
            `no dead worker explains it: previous attempt on pid ${prev.pid} (${prev.outcome ?? 'no outcome'}) ${iso(prev.started_at)}` +
            `..${prev.ended_at ? iso(prev.ended_at) : '?'} read attempt ${prev.attempt}, this one on pid ${e.pid} ${iso(e.started_at)} read ` +
            `attempt ${e.attempt}; pg-boss failed its job ${(failuresOf.get(e.run_id) ?? []).map((f) => `at ${iso(f.at)} (${f.why})`).join(', ') || 'never'}`;
      }
      reexecutions.push({ idempotency_key: key, run_id: e.run_id, attempt: i + 1, reason, explained, ...(lapsed ? { lapsed } : {}) });
    }
  }
  return { reexecutions, policyRetries };
}
