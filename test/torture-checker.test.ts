import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Death } from './support/torture/cluster.ts';
import { checkFlow, judgeFlowLogs, judgeReexecutions } from './support/torture/checker.ts';
import type { CheckedCron, CheckedLimit, ExecRow, JobFailure, LastRunRow, LedgerLogRow, LedgerRow, LogRow } from './support/torture/checker.ts';
import { PLANNED_FAILURE, failurePlan } from './support/torture/plan.ts';

// The torture checker's flow-control verdicts (test/support/torture/checker.ts) on rows made up
// here: a consistent history passes, and each broken promise the torture must catch (a limit
// exceeded, a rate exceeded, an attempt missing from attempt_log, an attempt started before its
// retry_at or executed twice, an outcome recorded twice, last_run_* naming an attempt's outcome)
// is reported. The torture itself (test/torture.test.ts) cannot show that its checks bite.

const CRON = '00000000-0000-0000-0000-00000000000c';
const RUN = '00000000-0000-0000-0000-0000000000a1';
const OTHER_RUN = '00000000-0000-0000-0000-0000000000b2';
const T0 = Date.parse('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0 + ms);
const iso = (ms: number) => at(ms).toISOString();

/** A key whose plan fails its first attempt only, without Retry-After. */
const KEY = (() => {
  for (let i = 0; ; i++) {
    const p = failurePlan(`key-${i}`);
    if (p.fails === 1 && p.retryAfterSeconds === null) return `key-${i}`;
  }
})();

const LIMIT: CheckedLimit = { name: 'pool', max_concurrency: 1, rate: { runs: 2, per_seconds: 1 }, graph_id: 'g' };
const cron: CheckedCron = { cron_id: CRON, kind: 'stateless_keep', thread_id: null, windows: [], failPlan: true, maxAttempts: 3, limits: ['pool'] };

function exec(x: Partial<ExecRow> & Pick<ExecRow, 'attempt' | 'outcome'> & { from: number; to: number | null }): ExecRow {
  return {
    id: String(Math.random()),
    idempotency_key: KEY,
    run_id: RUN,
    cron_id: CRON,
    thread_id: null,
    pid: 1,
    started_at: at(x.from),
    ended_at: x.to === null ? null : at(x.to),
    graph_id: 'g',
    assistant_id: 'g',
    ...x,
  };
}

/** One occurrence that failed its first attempt (retry_at +500 ms) and succeeded at its second. */
function history() {
  const ledger: LedgerRow[] = [
    {
      cron_id: CRON,
      scheduled_for: at(0),
      sf_us: String(T0 * 1000),
      run_id: RUN,
      trigger: 'schedule',
      status: 'success',
      reason: null,
      error: null,
      started_at: at(600),
      attempt_log: [
        {
          attempt: 1,
          started_at: iso(0),
          ended_at: iso(100),
          status: 'error',
          error: { error: 'RetryableError', message: `${PLANNED_FAILURE} (attempt 1)` },
          retry_at: iso(500),
        },
      ],
    },
  ];
  const execs: ExecRow[] = [exec({ attempt: 1, outcome: 'retryable', from: 5, to: 90 }), exec({ attempt: 2, outcome: 'returned', from: 605, to: 700 })];
  const runById = new Map<string, LogRow>([
    [RUN, { run_id: RUN, cron_id: CRON, scheduled_for: at(0), sf_us: String(T0 * 1000), thread_id: 't', deleted_at: null, deleted_status: null }],
  ]);
  const ledgerLog: LedgerLogRow[] = [
    { cron_id: CRON, sf_us: String(T0 * 1000), old_status: null, new_status: 'enqueued' },
    { cron_id: CRON, sf_us: String(T0 * 1000), old_status: 'enqueued', new_status: 'running' },
    { cron_id: CRON, sf_us: String(T0 * 1000), old_status: 'running', new_status: 'enqueued' },
    { cron_id: CRON, sf_us: String(T0 * 1000), old_status: 'enqueued', new_status: 'running' },
    { cron_id: CRON, sf_us: String(T0 * 1000), old_status: 'running', new_status: 'success' },
  ];
  const lastRuns: LastRunRow[] = [{ cron_id: CRON, sf_us: String(T0 * 1000), status: 'success', run_id: RUN }];
  return { ledger, execs, runById, ledgerLog, lastRuns, deaths: [] as Death[], jobFailures: [] as JobFailure[] };
}

type History = ReturnType<typeof history>;

function verdict(h: History): string[] {
  const failures: string[] = [];
  const counts: Record<string, number> = {};
  const fail = (what: string, xs: unknown[], detail: string) => {
    if (xs.length) failures.push(`${what}: ${xs.length} (${detail})`);
  };
  const deathOf = new Map(h.deaths.map((d) => [d.pid, d]));
  const byKey = new Map<string, ExecRow[]>();
  for (const e of [...h.execs].sort((a, b) => a.started_at.getTime() - b.started_at.getTime()))
    byKey.set(e.idempotency_key, [...(byKey.get(e.idempotency_key) ?? []), e]);
  const { reexecutions } = judgeReexecutions(byKey, deathOf, [], h.jobFailures);
  fail(
    're-executions no dead worker explains',
    reexecutions.filter((r) => !r.explained),
    '',
  );
  checkFlow({ crons: [cron], limits: [LIMIT] }, { ledger: h.ledger, execs: h.execs, deathOf, runById: h.runById, fail, counts });
  judgeFlowLogs({ ledger: h.ledger, fail, counts, ledgerLog: h.ledgerLog, lastRuns: h.lastRuns, waits: [] });
  return failures;
}

const broken = (h: History, pattern: RegExp) => {
  const failures = verdict(h);
  assert.ok(
    failures.some((f) => pattern.test(f)),
    `expected a failure matching ${pattern}, got: ${JSON.stringify(failures)}`,
  );
};

describe('torture checker: flow control', () => {
  test('a retried occurrence as it should be passes', () => {
    assert.deepEqual(verdict(history()), []);
  });

  test('a second execution of one attempt without a dead worker is a re-execution', () => {
    const h = history();
    h.execs.push(exec({ attempt: 2, outcome: 'returned', from: 800, to: 900 }));
    broken(h, /re-executions no dead worker explains/);
    // The same with the first execution's worker killed mid-run is explained.
    const k = history();
    k.execs[1] = exec({ attempt: 2, outcome: null, from: 605, to: null, pid: 7 });
    k.execs.push(exec({ attempt: 2, outcome: 'returned', from: 1200, to: 1300 }));
    k.deaths.push({ role: 'worker', pid: 7, at: at(650), cause: 'killed', code: 'SIGKILL', tail: [] });
    assert.deepEqual(verdict(k), []);
  });

  test('a retry whose run was deleted as it started (its attempt unread) follows a retryable failure: not a re-execution', () => {
    // Seen in a torture run: attempt 2 failed retryably; attempt 3 was claimed, then its run was
    // deleted before the agent read its attempt (null).
    const h = history();
    h.execs[1] = exec({ attempt: 2, outcome: 'retryable', from: 600, to: 650 });
    h.execs.push(exec({ attempt: null, outcome: 'aborted', from: 1500, to: 1510 }));
    const byKey = new Map([[KEY, [...h.execs].sort((a, b) => a.started_at.getTime() - b.started_at.getTime())]]);
    assert.deepEqual(judgeReexecutions(byKey, new Map(), []), { reexecutions: [], policyRetries: 2 });
    // One that began while the retryable attempt still ran is not its successor.
    h.execs[2] = exec({ attempt: null, outcome: 'aborted', from: 620, to: 700 });
    const overlapping = new Map([[KEY, [...h.execs].sort((a, b) => a.started_at.getTime() - b.started_at.getTime())]]);
    assert.deepEqual(
      judgeReexecutions(overlapping, new Map(), []).reexecutions.map((r) => r.explained),
      [false],
    );
  });

  test('a second execution of one attempt after pg-boss failed its job (a live worker whose heartbeat lapsed) is counted apart', () => {
    // Attempt 2 ran on a live worker that stored nothing for 10 s: pg-boss failed its job and handed it out again.
    const h = history();
    h.execs.push(exec({ attempt: 2, outcome: 'returned', from: 11_000, to: 11_100, pid: 2 }));
    broken(h, /re-executions no dead worker explains/);
    h.jobFailures.push({ run_id: RUN, retry_count: 1, started_on: at(600), why: 'job heartbeat timeout', at: at(10_600) });
    assert.deepEqual(verdict(h), []);
    const byKey = new Map([[KEY, [...h.execs].sort((a, b) => a.started_at.getTime() - b.started_at.getTime())]]);
    const { reexecutions } = judgeReexecutions(byKey, new Map(), [], h.jobFailures);
    assert.deepEqual(
      reexecutions.map((r) => [r.attempt, r.explained, r.lapsed]),
      [[3, true, true]],
    );
    assert.match(reexecutions[0].reason, /pg-boss failed the previous attempt's job \(job heartbeat timeout\)/);
    // A failure of an earlier attempt's job (before the previous execution started) explains nothing.
    const older = history();
    older.execs.push(exec({ attempt: 2, outcome: 'returned', from: 11_000, to: 11_100, pid: 2 }));
    older.jobFailures.push({ run_id: RUN, retry_count: 0, started_on: at(0), why: 'job heartbeat timeout', at: at(550) });
    broken(older, /re-executions no dead worker explains/);
  });

  test('an attempt started before its retry_at', () => {
    const h = history();
    h.execs[1] = exec({ attempt: 2, outcome: 'returned', from: 400, to: 450 });
    broken(h, /attempts started before their retry_at/);
  });

  test('an earlier attempt missing from attempt_log', () => {
    const h = history();
    h.ledger[0].attempt_log = [];
    broken(h, /executed attempts disagree with their attempt_log/);
  });

  test('an outcome that disagrees with the failure plan', () => {
    const h = history();
    h.ledger[0].attempt_log!.push({ ...h.ledger[0].attempt_log![0], attempt: 2, retry_at: iso(650) });
    h.execs[1] = exec({ attempt: 2, outcome: 'retryable', from: 605, to: 640 });
    h.execs.push(exec({ attempt: 3, outcome: 'returned', from: 700, to: 750 }));
    broken(h, /disagree with their failure plan/);
  });

  test('more executions of a limit at once than its max_concurrency', () => {
    const h = history();
    h.execs.push(exec({ attempt: 1, outcome: 'returned', from: 650, to: 800, run_id: OTHER_RUN, idempotency_key: 'other', cron_id: null }));
    broken(h, /executions of limit pool above its max_concurrency 1/);
  });

  test('more starts in a window than the rate', () => {
    const h = history();
    h.ledger.push({ ...h.ledger[0], scheduled_for: at(1), sf_us: String(T0 * 1000 + 1000), run_id: null, attempt_log: null, started_at: at(900) });
    broken(h, /starts of limit pool above its rate of 2 per 1 s/);
  });

  test('an outcome recorded twice, or an attempt’s outcome in last_run_*', () => {
    const h = history();
    // The first attempt's failure ended the occurrence, then its retry reopened it.
    h.ledgerLog.splice(
      2,
      1,
      { cron_id: CRON, sf_us: String(T0 * 1000), old_status: 'running', new_status: 'error' },
      { cron_id: CRON, sf_us: String(T0 * 1000), old_status: 'error', new_status: 'enqueued' },
    );
    broken(h, /outcome was recorded more than once/);
    broken(h, /ended occurrences that changed status again/);
    const l = history();
    l.lastRuns.unshift({ cron_id: CRON, sf_us: String(T0 * 1000), status: 'error', run_id: RUN });
    broken(l, /last_run_\* more than once/);
    broken(l, /last_run_\* naming an outcome its occurrence did not end with/);
  });
});
