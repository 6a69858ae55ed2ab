import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AgentRegistry, echo } from '../libs/agents/index.ts';
import type { Agent } from '../libs/agents/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { cancelRuns, RunWorker } from '../libs/runs/index.ts';
import { excerptOf, setLedgerExcerptBytes, storableText } from '../libs/runs/excerpt.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { eventually, newScheduler, quietLogger, startTestQueue } from './support/engine.ts';
import { startInProcessApi, teardown } from './support/inprocess.ts';
import type { InProcessApi } from './support/inprocess.ts';

// Seeing and steering schedules (issue 14, API): preview, next with `from`, backfill, kept
// outputs, retry of a failed occurrence and the pause note, through HTTP against the in-process
// API, a worker and (for backfill against the schedule) a scheduler pass, on PostgreSQL.

/** Every idempotency key an agent was given, in order, per cron-run graph "flaky". */
const keys: string[] = [];
/** flaky: fails the first attempt of each idempotency key, succeeds after. */
const flaky: Agent = async (input, ctx) => {
  const first = !keys.includes(ctx.idempotency_key);
  keys.push(ctx.idempotency_key);
  if (first) throw new Error('first attempt fails');
  return { attempt: keys.filter((k) => k === ctx.idempotency_key).length, input };
};
/** weird: final values PostgreSQL could not store as jsonb (NUL, lone surrogates). */
const weird: Agent = async () => ({ text: 'a\u0000b\ud800c', [`k\u0000`]: '\udc00', emoji: '😀' });

describe('schedules API: preview, next, backfill, kept outputs, retry, pause note', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let worker: RunWorker;
  let api: InProcessApi;

  before(async () => {
    db = await createTestDatabase('api_schedules');
    boss = await startTestQueue(db.url, { runTimeoutSeconds: 120 });
    const agents = new AgentRegistry().register('echo', echo).register('flaky', flaky).register('weird', weird);
    worker = new RunWorker({ pool: db.pool, boss, logger: quietLogger(), agents, concurrency: 16, runTimeoutSeconds: 120, listenUrl: db.url });
    await worker.start();
    api = await startInProcessApi(db.pool, boss, db.url, agents);
  });
  after(() =>
    teardown(
      () => setLedgerExcerptBytes(4096),
      () => api?.close(),
      async () =>
        cancelRuns(
          db.pool,
          boss,
          (await db.pool.query(`SELECT run_id FROM runs WHERE status IN ('pending', 'running')`)).rows.map((r) => r.run_id),
          'interrupt',
        ),
      () => worker?.stop(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  const call = (method: string, path: string, body?: unknown) => api.call(method, path, body);
  const ok = async (method: string, path: string, body?: unknown) => {
    const res = await call(method, path, body);
    assert.equal(res.status, 200, `${method} ${path}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const unprocessable = async (method: string, path: string, body: unknown, detail: RegExp) => {
    const res = await call(method, path, body);
    assert.equal(res.status, 422, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    assert.match(res.body.detail, detail);
  };
  const ledger = async (cronId: string): Promise<any[]> => ok('GET', `/runs/crons/${cronId}/occurrences?limit=1000`);
  /** The ledger once no occurrence is enqueued or running. */
  const settled = (cronId: string) =>
    eventually(
      async () => {
        const rows = await ledger(cronId);
        return rows.every((o) => !['enqueued', 'running'].includes(o.status)) ? rows : null;
      },
      `cron ${cronId}'s occurrences to settle`,
      45_000,
      25,
    );
  const create = (body: Record<string, unknown>) => ok('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 0 1 1 *', ...body });

  test('preview: fire times in UTC and local time with the DST cases marked, a description, and the create 422s', async () => {
    // America/New_York, 2030: clocks go forward on March 10 at 02:00, back on November 3 at 02:00.
    const gap = await ok('POST', '/runs/crons/preview', { schedule: '30 2 * * *', timezone: 'america/new_york', from: '2030-03-09T12:00:00Z', count: 2 });
    assert.equal(gap.timezone, 'America/New_York', 'the canonical name');
    assert.equal(gap.description, 'At 02:30');
    assert.equal(gap.from, '2030-03-09T12:00:00.000Z');
    assert.deepEqual(
      gap.next.map((t: any) => [t.utc, t.local, t.dst]),
      [
        ['2030-03-10T07:00:00.000Z', '2030-03-10T03:00:00-04:00', 'skipped'],
        ['2030-03-11T06:30:00.000Z', '2030-03-11T02:30:00-04:00', null],
      ],
    );
    assert.match(
      gap.next[0].dst_note,
      /02:30 does not exist on 2030-03-10 in America\/New_York \(clocks go forward from 02:00 to 03:00\): fires once at 03:00/,
    );
    assert.equal(gap.next[1].dst_note, null);

    const fixed = await ok('POST', '/runs/crons/preview', { schedule: '30 1 * * *', timezone: 'America/New_York', from: '2030-11-02T12:00:00Z', count: 2 });
    assert.deepEqual(
      fixed.next.map((t: any) => [t.local, t.dst]),
      [
        ['2030-11-03T01:30:00-04:00', 'repeated_first'],
        ['2030-11-04T01:30:00-05:00', null],
      ],
    );
    assert.match(fixed.next[0].dst_note, /01:30 happens twice on 2030-11-03 .* fires only in this one/);

    const interval = await ok('POST', '/runs/crons/preview', { schedule: '30 * * * *', timezone: 'America/New_York', from: '2030-11-03T04:00:00Z', count: 4 });
    assert.equal(interval.description, 'At 30 minutes past the hour');
    assert.deepEqual(
      interval.next.map((t: any) => [t.utc, t.local, t.dst]),
      [
        ['2030-11-03T04:30:00.000Z', '2030-11-03T00:30:00-04:00', null],
        ['2030-11-03T05:30:00.000Z', '2030-11-03T01:30:00-04:00', 'repeated_first'],
        ['2030-11-03T06:30:00.000Z', '2030-11-03T01:30:00-05:00', 'repeated_second'],
        ['2030-11-03T07:30:00.000Z', '2030-11-03T02:30:00-05:00', null],
      ],
    );
    assert.match(interval.next[1].dst_note, /first pass, and the schedule fires in the second too/);

    // Defaults: from now, 10 times, UTC; aliases are described too.
    const before = Date.now();
    const daily = await ok('POST', '/runs/crons/preview', { schedule: '@daily' });
    assert.equal(daily.description, 'At 00:00');
    assert.equal(daily.timezone, 'UTC');
    assert.equal(daily.next.length, 10);
    assert.ok(Date.parse(daily.next[0].utc) > before - 5_000 && daily.next[0].utc.endsWith('T00:00:00.000Z'));
    assert.equal((await ok('POST', '/runs/crons/preview', { schedule: '0 9 * * 1-5', count: 1000 })).next.length, 1000);

    // The same 422s as create, each naming its field.
    await unprocessable('POST', '/runs/crons/preview', {}, /^body\.schedule: required/);
    await unprocessable('POST', '/runs/crons/preview', { schedule: '0 0 1 1 * 2030' }, /^body\.schedule: .*looks like a year/);
    await unprocessable('POST', '/runs/crons/preview', { schedule: '*/5 * * * * *' }, /^body\.schedule: .*CRON_ALLOW_SECONDS_SCHEDULE/);
    await unprocessable('POST', '/runs/crons/preview', { schedule: '61 * * * *' }, /^body\.schedule: /);
    await unprocessable('POST', '/runs/crons/preview', { schedule: '0 9 * * *', timezone: 'Mars/Base' }, /^body\.timezone: .*Mars\/Base/);
    await unprocessable('POST', '/runs/crons/preview', { schedule: '0 9 * * *', count: 1001 }, /^body\.count: /);
    await unprocessable('POST', '/runs/crons/preview', { schedule: '0 9 * * *', from: 'tomorrow' }, /^body\.from: /);
    await unprocessable('POST', '/runs/crons/preview', { schedule: '0 9 * * *', from: '0001-01-01T00:00:00Z' }, /^body\.from: must be between 1900/);
    assert.equal((await call('GET', '/runs/crons/preview')).status, 405);
  });

  test('next: `from` pages on, a disabled cron answers what it would fire if enabled, count up to 1,000', async () => {
    const paused = await create({ schedule: '0 9 * * *', timezone: 'Europe/Paris', enabled: false });
    const page1 = await ok('GET', `/runs/crons/${paused.cron_id}/next?count=3`);
    assert.equal(page1.enabled, false);
    assert.equal(page1.description, 'At 09:00');
    assert.equal(page1.next.length, 3, 'a disabled cron shows what it would fire');
    assert.equal(page1.next[0].utc, (await ok('GET', `/runs/crons/${paused.cron_id}`)).next_run_date);
    assert.ok(page1.next.every((t: any) => /T09:00:00\+0[12]:00$/.test(t.local)));
    const page2 = await ok('GET', `/runs/crons/${paused.cron_id}/next?count=2&from=${encodeURIComponent(page1.next[2].utc)}`);
    const all = await ok('GET', `/runs/crons/${paused.cron_id}/next?count=5`);
    assert.deepEqual(
      [...page1.next, ...page2.next].map((t: any) => t.utc),
      all.next.map((t: any) => t.utc),
      'the last time of a page is the from of the next',
    );
    // Europe/Paris goes to summer time on 2031-03-30 at 02:00: a 02:30 cron is marked there.
    const later = await ok('GET', `/runs/crons/${paused.cron_id}/next?count=1&from=2031-03-29T12:00:00Z`);
    assert.equal(later.next[0].utc, '2031-03-30T07:00:00.000Z');
    const gapCron = await create({ schedule: '30 2 * * *', timezone: 'Europe/Paris' });
    const marked = await ok('GET', `/runs/crons/${gapCron.cron_id}/next?count=1&from=2031-03-29T12:00:00Z`);
    assert.deepEqual([marked.next[0].local, marked.next[0].dst], ['2031-03-30T03:00:00+02:00', 'skipped']);
    // A from before the next fire changes nothing: the list never shows what will not fire.
    assert.deepEqual((await ok('GET', `/runs/crons/${paused.cron_id}/next?count=3&from=2001-01-01T00:00:00Z`)).next, page1.next);
    assert.equal((await ok('GET', `/runs/crons/${paused.cron_id}/next?count=1000`)).next.length, 1000);
    await unprocessable('GET', `/runs/crons/${paused.cron_id}/next?count=1001`, undefined, /^query\.count: /);
    await unprocessable('GET', `/runs/crons/${paused.cron_id}/next?from=soon`, undefined, /^query\.from: /);
    // A finished cron fires nothing more.
    await db.pool.query(`UPDATE crons SET enabled = false, finished_at = now(), next_run_date = NULL WHERE cron_id = $1`, [paused.cron_id]);
    assert.deepEqual((await ok('GET', `/runs/crons/${paused.cron_id}/next`)).next, []);
  });

  test('backfill: each past occurrence fires once (also before the cron existed), trigger backfill, the schedule position untouched, capped', async () => {
    const made = await create({ schedule: '0 * * * *', input: { said: 'hello' } });
    const cronId = made.cron_id as string;
    const {
      rows: [before],
    } = await db.pool.query(`SELECT next_run_date, fired_through FROM crons WHERE cron_id = $1`, [cronId]);

    const first = await ok('POST', `/runs/crons/${cronId}/backfill`, { from: '2020-01-01T00:00:00Z', to: '2020-01-01T03:00:00Z' });
    assert.deepEqual(first, {
      cron_id: cronId,
      from: '2020-01-01T00:00:00.000Z',
      to: '2020-01-01T03:00:00.000Z',
      occurrences: 4,
      fired: 4,
      skipped_existing: 0,
      skipped_overlap: 0,
    });
    const again = await ok('POST', `/runs/crons/${cronId}/backfill`, { from: '2020-01-01T02:00:00Z', to: '2020-01-01T05:00:00Z' });
    assert.deepEqual([again.occurrences, again.fired, again.skipped_existing, again.skipped_overlap], [4, 2, 2, 0]);

    // Two backfills of one range at once take turns on the cron's lock: each occurrence fires once.
    const racing = await Promise.all(
      [0, 1].map(() => ok('POST', `/runs/crons/${cronId}/backfill`, { from: '2019-06-01T00:00:00Z', to: '2019-06-01T09:00:00Z' })),
    );
    assert.deepEqual(racing.map((r) => r.fired).sort(), [0, 10]);
    assert.deepEqual(racing.map((r) => r.skipped_existing).sort(), [0, 10]);

    const rows = (await settled(cronId)).filter((o) => o.trigger === 'backfill' && o.scheduled_for >= '2020');
    assert.deepEqual(
      rows.map((o) => [o.scheduled_for, o.status]).reverse(),
      ['00', '01', '02', '03', '04', '05'].map((h) => [`2020-01-01T${h}:00:00.000Z`, 'success']),
    );
    // Kept outputs: each run's final values stay on its row after its ephemeral thread is gone.
    for (const o of rows) {
      assert.equal(o.output_excerpt, '{"said":"hello"}');
      assert.equal(o.output_truncated, false);
      assert.equal((await call('GET', `/threads/${o.thread_id}`)).status, 404, 'the ephemeral thread was deleted');
    }
    const {
      rows: [after],
    } = await db.pool.query(`SELECT next_run_date, fired_through FROM crons WHERE cron_id = $1`, [cronId]);
    assert.deepEqual(after, before, 'a backfill never moves next_run_date or fired_through');
    const { rows: runs } = await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = $1`, [cronId]);
    assert.equal(runs[0].n, 17, 'the create occurrence and sixteen backfilled ones');

    // The schedule reaching a backfilled occurrence fires nothing more for it (the ledger row guards it).
    const lastHour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString();
    assert.equal((await ok('POST', `/runs/crons/${cronId}/backfill`, { from: lastHour, to: lastHour })).fired, 1);
    await db.pool.query(`UPDATE crons SET next_run_date = $2, fired_through = NULL WHERE cron_id = $1`, [cronId, lastHour]);
    await settled(cronId);
    // A finishing run holds the cron a moment, and a pass skips a locked cron: pass until it was claimed.
    const scheduler = newScheduler(db.pool, boss, db.url);
    const pass = await eventually(
      async () => {
        const p = await scheduler.runDue();
        return p.claimed > 0 ? p : null;
      },
      'a pass to claim the cron',
      10_000,
      25,
    );
    assert.equal(pass.fired, 0, 'the due occurrence was already backfilled');
    const due = (await ledger(cronId)).filter((o) => o.scheduled_for === lastHour);
    assert.deepEqual(
      due.map((o) => o.trigger),
      ['backfill'],
    );
    const {
      rows: [moved],
    } = await db.pool.query(`SELECT next_run_date FROM crons WHERE cron_id = $1`, [cronId]);
    assert.equal(moved.next_run_date.getTime(), Date.parse(lastHour) + 3_600_000, 'the pass advanced past it');

    // Capped by CRON_BACKFILL_MAX (1000): the answer says how many; nothing is written.
    const minutely = await create({ schedule: '* * * * *', enabled: false });
    await unprocessable(
      'POST',
      `/runs/crons/${minutely.cron_id}/backfill`,
      { from: '2020-01-01T00:00:00Z', to: '2020-01-02T23:59:00Z' },
      /^body: the range holds 2880 occurrences .*CRON_BACKFILL_MAX \(1000\)/,
    );
    await unprocessable(
      'POST',
      `/runs/crons/${minutely.cron_id}/backfill`,
      { from: '2000-01-01T00:00:00Z', to: '2020-01-01T00:00:00Z' },
      /holds more than 1000000 occurrences/,
    );
    assert.equal((await ledger(minutely.cron_id)).length, 0);
    // A disabled cron can be backfilled: exactly 1,000 is within the cap.
    const full = await ok('POST', `/runs/crons/${minutely.cron_id}/backfill`, { from: '2020-01-01T00:00:00Z', to: '2020-01-01T16:39:00Z' });
    assert.equal(full.fired, 1000);

    await unprocessable('POST', `/runs/crons/${cronId}/backfill`, { to: '2020-01-01T00:00:00Z' }, /^body\.from: /);
    await unprocessable(
      'POST',
      `/runs/crons/${cronId}/backfill`,
      { from: '1969-12-31T23:59:59Z', to: '2020-01-01T00:00:00Z' },
      /^body\.from: must be 1970-01-01T00:00:00Z or later/,
    );
    await unprocessable(
      'POST',
      `/runs/crons/${cronId}/backfill`,
      { from: '2020-01-02T00:00:00Z', to: '2020-01-01T00:00:00Z' },
      /^body\.to: must not be before from/,
    );
    await unprocessable(
      'POST',
      `/runs/crons/${cronId}/backfill`,
      { from: '2020-01-01T00:00:00Z', to: '2099-01-01T00:00:00Z' },
      /^body\.to: must not be in the future/,
    );
    assert.equal(
      (await call('POST', `/runs/crons/00000000-0000-4000-8000-000000000000/backfill`, { from: '2020-01-01T00:00:00Z', to: '2020-01-02T00:00:00Z' })).status,
      404,
    );
    await settled(minutely.cron_id);
  });

  test('backfill honours the overlap rules: held-back occurrences are counted, not recorded, and fire in a later backfill', async () => {
    const made = await create({ schedule: '0 0 * * *', input: { sleep_ms: 100_000 }, overlap_policy: 'skip' });
    await eventually(async () => (await ledger(made.cron_id)).find((o) => o.status === 'running'), 'the first run to start', 20_000, 25);
    const held = await ok('POST', `/runs/crons/${made.cron_id}/backfill`, { from: '2021-01-01T00:00:00Z', to: '2021-01-03T00:00:00Z' });
    assert.deepEqual([held.occurrences, held.fired, held.skipped_overlap], [3, 0, 3]);
    assert.equal((await ledger(made.cron_id)).length, 1, 'nothing recorded');
    await cancelRuns(db.pool, boss, [made.run_id], 'interrupt');
    const one = await ok('POST', `/runs/crons/${made.cron_id}/backfill`, { from: '2021-01-01T00:00:00Z', to: '2021-01-03T00:00:00Z' });
    assert.deepEqual([one.fired, one.skipped_overlap], [1, 2], 'skip: one run at a time, the oldest first');
    const backfilled = (await ledger(made.cron_id)).filter((o) => o.trigger === 'backfill');
    assert.deepEqual(
      backfilled.map((o) => o.scheduled_for),
      ['2021-01-01T00:00:00.000Z'],
    );
    await cancelRuns(db.pool, boss, [backfilled[0].run_id], 'interrupt');
  });

  test('kept outputs: the final values and the error, cut to LEDGER_OUTPUT_EXCERPT_BYTES, storable whatever the agent said; 0 keeps none', async () => {
    const failing = await create({ input: { error: 'the model said no' } });
    const [failed] = await settled(failing.cron_id);
    assert.equal(failed.status, 'error');
    assert.deepEqual(JSON.parse(failed.error_excerpt), { error: 'Error', message: 'the model said no' });
    assert.equal(failed.output_excerpt, null);

    // NUL and lone surrogates: the run still succeeds (its thread is ephemeral: only the excerpt is written).
    const odd = await ok('POST', '/runs/crons', { assistant_id: 'weird', schedule: '0 0 1 1 *' });
    const [oddRow] = await settled(odd.cron_id);
    assert.equal(oddRow.status, 'success');
    assert.deepEqual(JSON.parse(oddRow.output_excerpt), { text: 'abc', k: '', emoji: '😀' });

    setLedgerExcerptBytes(24);
    try {
      const big = await create({ input: { text: 'é'.repeat(100) } });
      const [row] = await settled(big.cron_id);
      assert.equal(row.output_truncated, true);
      assert.ok(Buffer.byteLength(row.output_excerpt) <= 24);
      assert.ok(row.output_excerpt.startsWith('{"text":"éé'), row.output_excerpt);
      assert.ok(!row.output_excerpt.includes('\ufffd'), 'cut between characters');
      setLedgerExcerptBytes(0);
      const none = await create({ input: { error: 'x' } });
      const [off] = await settled(none.cron_id);
      assert.deepEqual([off.status, off.output_excerpt, off.error_excerpt, off.error], ['error', null, null, 'x']);
    } finally {
      setLedgerExcerptBytes(4096);
    }

    // The excerpt function on its own: escapes of NUL and lone surrogates go, an escaped backslash stays.
    assert.equal(storableText('"a\\u0000b\\ud800c\\\\u0000d\\ud83d\\ude00"'), '"abc\\\\u0000d\\ud83d\\ude00"');
    assert.equal(storableText('x\u0000y\udc00z'), 'xyz');
    assert.deepEqual(excerptOf({ a: 1 }, 0), null);
    assert.deepEqual(excerptOf(10n), { text: '"[not JSON: Do not know how to serialize a BigInt]"', truncated: false });
    assert.deepEqual(excerptOf('😀😀', 5), { text: '"😀', truncated: true });
    assert.deepEqual(excerptOf('😀😀', 4), { text: '"', truncated: true });
  });

  test('retry: a failed occurrence runs again with the same idempotency key, recorded in the ledger; 409 / 404 / 422 otherwise', async () => {
    const made = await ok('POST', '/runs/crons', { assistant_id: 'flaky', schedule: '0 0 1 1 *', on_run_completed: 'keep', input: { n: 1 } });
    const [failed] = await settled(made.cron_id);
    assert.deepEqual([failed.status, failed.retries, failed.retried_at], ['error', 0, null]);
    const at = encodeURIComponent(failed.scheduled_for);

    // Two retries at once take turns on the cron's lock: one runs it again, the other finds it enqueued.
    const both = await Promise.all([0, 1].map(() => call('POST', `/runs/crons/${made.cron_id}/occurrences/${at}/retry`)));
    assert.deepEqual(both.map((r) => r.status).sort(), [200, 409]);
    assert.match(both.find((r) => r.status === 409)!.body.detail, /is (enqueued|running|success)/);
    const retried = both.find((r) => r.status === 200)!.body;
    assert.equal(retried.cron_id, made.cron_id);
    assert.equal(retried.scheduled_for, failed.scheduled_for, 'the same occurrence');
    assert.equal(retried.thread_id, made.thread_id, 'on the occurrence thread it kept');
    assert.notEqual(retried.run_id, made.run_id, 'a new run (and job)');
    assert.equal(retried.retries, 1);
    const [done] = await settled(made.cron_id);
    assert.deepEqual([done.status, done.retries, done.run_id, done.error, done.error_excerpt], ['success', 1, retried.run_id, null, null]);
    assert.ok(done.retried_at);
    assert.deepEqual(JSON.parse(done.output_excerpt), { attempt: 2, input: { n: 1 } });
    const key = `${made.cron_id}:${failed.scheduled_for}`;
    assert.deepEqual(
      keys.filter((k) => k.startsWith(made.cron_id)),
      [key, key],
      'the same idempotency key on both attempts',
    );
    const threadRuns = (await ok('GET', `/threads/${made.thread_id}/runs`)).map((r: any) => r.run_id);
    assert.deepEqual(threadRuns, [retried.run_id], "the earlier attempt's run gave way to the new one");
    const cron = await ok('GET', `/runs/crons/${made.cron_id}`);
    assert.deepEqual([cron.last_run_status, cron.last_run_id], ['success', retried.run_id]);

    // Only an occurrence that ended error, timeout or interrupted.
    const refused = await call('POST', `/runs/crons/${made.cron_id}/occurrences/${at}/retry`);
    assert.equal(refused.status, 409);
    assert.match(refused.body.detail, /is success; only one that ended error, timeout, interrupted can be retried/);
    const missing = await call('POST', `/runs/crons/${made.cron_id}/occurrences/2020-01-01T00:00:00Z/retry`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.detail, /Occurrence not found/);
    assert.equal((await call('POST', `/runs/crons/00000000-0000-4000-8000-000000000000/occurrences/${at}/retry`)).status, 404);
    await unprocessable('POST', `/runs/crons/${made.cron_id}/occurrences/yesterday/retry`, undefined, /^path\.scheduled_for: /);
    await unprocessable('POST', `/runs/crons/${made.cron_id}/occurrences/0000-01-01T00:00:00Z/retry`, undefined, /^path\.scheduled_for: must be between 1900/);

    // An ephemeral occurrence (its thread and run deleted) and a second retry: retries counts on.
    const eph = await create({ input: { error: 'boom' } });
    const [ephFailed] = await settled(eph.cron_id);
    const path = `/runs/crons/${eph.cron_id}/occurrences/${encodeURIComponent(ephFailed.scheduled_for)}/retry`;
    const r1 = await ok('POST', path);
    await settled(eph.cron_id);
    const r2 = await ok('POST', path);
    assert.equal(r2.retries, 2);
    assert.notEqual(r1.run_id, r2.run_id);
    const [twice] = await settled(eph.cron_id);
    assert.deepEqual([twice.status, twice.retries, twice.trigger, twice.error], ['error', 2, 'create', 'boom']);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM runs WHERE cron_id = $1`, [eph.cron_id]);
    assert.equal(rows[0].n, 0, 'ephemeral: each attempt went with its thread');

    // The overlap rule holds a retry back as it holds a trigger.
    const busy = await create({ input: { error: 'x' }, overlap_policy: 'skip' });
    const [busyFailed] = await settled(busy.cron_id);
    await db.pool.query(`UPDATE crons SET payload = '{"input": {"sleep_ms": 100000}}' WHERE cron_id = $1`, [busy.cron_id]);
    const running = await ok('POST', `/runs/crons/${busy.cron_id}/trigger`);
    const held = await call('POST', `/runs/crons/${busy.cron_id}/occurrences/${encodeURIComponent(busyFailed.scheduled_for)}/retry`);
    assert.equal(held.status, 409);
    assert.match(held.body.detail, /overlap_policy skip/);
    await cancelRuns(db.pool, boss, [running.run_id], 'interrupt');
  });

  test('pause note: set with enabled false, shown by get, search and PATCH, cleared on enable; at most 280 characters', async () => {
    const made = await create({ metadata: { pause: 'note' } });
    const paused = await ok('PATCH', `/runs/crons/${made.cron_id}`, { enabled: false, paused_reason: 'provider outage, back Monday' });
    assert.deepEqual([paused.enabled, paused.paused_reason], [false, 'provider outage, back Monday']);
    assert.equal((await ok('GET', `/runs/crons/${made.cron_id}`)).paused_reason, 'provider outage, back Monday');
    const found = await ok('POST', '/runs/crons/search', { metadata: { pause: 'note' } });
    assert.equal(found[0].paused_reason, 'provider outage, back Monday');
    const selected = await ok('POST', '/runs/crons/search', { metadata: { pause: 'note' }, select: ['cron_id', 'paused_reason'] });
    assert.deepEqual(selected, [{ cron_id: made.cron_id, paused_reason: 'provider outage, back Monday' }]);
    // Fields not sent stay; a paused cron's note can be changed.
    assert.equal((await ok('PATCH', `/runs/crons/${made.cron_id}`, { metadata: { pause: 'note', x: 1 } })).paused_reason, 'provider outage, back Monday');
    assert.equal((await ok('PATCH', `/runs/crons/${made.cron_id}`, { paused_reason: 'still down' })).paused_reason, 'still down');
    await unprocessable('PATCH', `/runs/crons/${made.cron_id}`, { paused_reason: 'x'.repeat(281) }, /^body\.paused_reason: at most 280 characters/);
    assert.equal((await ok('PATCH', `/runs/crons/${made.cron_id}`, { paused_reason: 'x'.repeat(280) })).paused_reason.length, 280);
    const resumed = await ok('PATCH', `/runs/crons/${made.cron_id}`, { enabled: true });
    assert.deepEqual([resumed.enabled, resumed.paused_reason], [true, null]);
    await unprocessable('PATCH', `/runs/crons/${made.cron_id}`, { paused_reason: 'why' }, /^body\.paused_reason: only a disabled cron has a pause note/);

    // At create, and in bulk.
    const born = await ok('POST', '/runs/crons', {
      assistant_id: 'echo',
      schedule: '0 0 1 1 *',
      enabled: false,
      paused_reason: 'waiting for keys',
      metadata: { pause: 'note' },
    });
    assert.equal(born.paused_reason, 'waiting for keys');
    assert.deepEqual(await ok('POST', '/runs/crons/bulk', { action: 'disable', metadata: { pause: 'note' }, paused_reason: 'freeze' }), {
      action: 'disable',
      count: 2,
    });
    assert.deepEqual(
      (await ok('POST', '/runs/crons/search', { metadata: { pause: 'note' } })).map((c: any) => c.paused_reason),
      ['freeze', 'freeze'],
    );
    await unprocessable('POST', '/runs/crons/bulk', { action: 'enable', metadata: { pause: 'note' }, paused_reason: 'no' }, /^body\.paused_reason: /);
    await ok('POST', '/runs/crons/bulk', { action: 'enable', metadata: { pause: 'note' } });
    assert.deepEqual(
      (await ok('POST', '/runs/crons/search', { metadata: { pause: 'note' } })).map((c: any) => c.paused_reason),
      [null, null],
    );
  });
});
