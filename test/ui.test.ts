import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { loadConfig } from '../libs/config/index.ts';
import { configuredJobs, registerMaintenanceJobs } from '../libs/maintenance/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { startTestQueue } from './support/engine.ts';
import { startInProcessApi, teardown } from './support/inprocess.ts';
import type { InProcessApi } from './support/inprocess.ts';

// The dashboard (/ui) in a real browser: Debian's chromium driven by playwright-core (never a
// downloaded browser), against the API in this process on one database, twice: AUTH_MODE=none
// and AUTH_MODE=api_key (alice, bob, an admin key). Every page and action; no request may leave
// 127.0.0.1 and no console error may appear. Screenshots go to .agentcron/ui-screenshots/
// (git-ignored). No worker runs: runs stay pending, so the ledgers' outcomes are written here.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = '.agentcron/ui-screenshots';
const KEYS = { alice: 'alice-key', bob: 'bob-key', admin: 'admin-key' } as const;

/** A page that records every request leaving 127.0.0.1 (refused) and every console error. */
async function newPage(context: BrowserContext): Promise<{ page: Page; outside: string[]; errors: string[] }> {
  const page = await context.newPage();
  const outside: string[] = [];
  const errors: string[] = [];
  await page.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:') return route.continue();
    outside.push(route.request().url());
    return route.abort();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  return { page, outside, errors };
}

const shot = (page: Page, name: string) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });

describe('dashboard (/ui) in chromium', { skip: existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM} (apt-get install chromium)` }, () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let open: InProcessApi;
  let keyed: InProcessApi;
  let browser: Browser;
  const ids: Record<string, string> = {};

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    const [database, launched] = await Promise.all([
      createTestDatabase('ui'),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      }),
    ]);
    db = database;
    browser = launched;
    boss = await startTestQueue(db.url);
    await ensureDefaultAssistants(db.pool, ['echo']);
    await registerMaintenanceJobs(db.pool, configuredJobs(loadConfig({})));
    open = await startInProcessApi(db.pool, boss, db.url);
    keyed = await startInProcessApi(db.pool, boss, db.url, undefined, {
      AUTH_MODE: 'api_key',
      AUTH_API_KEYS: `${KEYS.alice}:alice,${KEYS.bob}:bob`,
      ADMIN_API_KEYS: KEYS.admin,
    });

    const create = async (api: InProcessApi, body: Record<string, unknown>, key?: string): Promise<string> => {
      const res = await api.call('POST', '/runs/crons', { assistant_id: 'echo', ...body }, key);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.cron_id;
    };
    ids.ops = await create(open, { schedule: '*/5 * * * *', timezone: 'Europe/Paris', metadata: { team: 'ops' }, input: { topic: 'ops' } });
    ids.report = await create(open, { schedule: '0 9 * * 1-5', timezone: 'America/New_York', metadata: { team: 'sales' }, enabled: false });
    ids.nightly = await create(open, { schedule: '30 2 * * *', metadata: { team: 'data' } });
    ids.alice1 = await create(keyed, { schedule: '0 8 * * *', metadata: { owner: 'alice' } }, KEYS.alice);
    ids.alice2 = await create(keyed, { schedule: '15 * * * *', metadata: { owner: 'alice' } }, KEYS.alice);
    ids.bob = await create(keyed, { schedule: '45 * * * *', metadata: { owner: 'bob' } }, KEYS.bob);

    // A ledger with every kind of outcome in the last hour (what a worker and a scheduler would write).
    await db.pool.query(
      `INSERT INTO cron_occurrences (cron_id, scheduled_for, trigger, status, reason, error, skipped_count, enqueued_at, started_at, ended_at)
       SELECT $1, t, 'schedule', s, r, e, k,
              CASE WHEN s = 'skipped' THEN NULL ELSE t + interval '2 seconds' END,
              CASE WHEN s = 'skipped' THEN NULL ELSE t + interval '3 seconds' END,
              CASE WHEN s IN ('success', 'error') THEN t + interval '5 seconds' END
         FROM (VALUES (50, 'success', NULL, NULL, 0), (40, 'error', NULL, 'RuntimeError: the model said no', 0),
                      (30, 'skipped', 'missed', NULL, 0), (20, 'success', NULL, NULL, 2), (10, 'skipped', 'overlap', NULL, 0))
              AS v(m, s, r, e, k),
              LATERAL (SELECT date_trunc('second', now()) - make_interval(mins => m) AS t) AS at`,
      [ids.ops],
    );
    await db.pool.query(`UPDATE cron_occurrences SET output_excerpt = '{"summary":"3 new articles on agents"}' WHERE cron_id = $1 AND status = 'success'`, [
      ids.ops,
    ]);
    // Flow control: a success on its second attempt (the first one's error kept), a jittered
    // start, and the create-run waiting for its retry (as the worker leaves them).
    await db.pool.query(
      `UPDATE cron_occurrences SET attempt_log = '[{"attempt": 1, "status": "error", "error": {"error": "RateLimited", "message": "429 Too Many Requests"}}]'
        WHERE cron_id = $1 AND status = 'success' AND skipped_count = 2`,
      [ids.ops],
    );
    await db.pool.query(
      `UPDATE cron_occurrences SET planned_for = scheduled_for + interval '7 seconds' WHERE cron_id = $1 AND status = 'success' AND skipped_count = 0`,
      [ids.ops],
    );
    await db.pool.query(
      `UPDATE runs SET waiting = 'retry', not_before = now() + interval '1 hour',
              attempt_log = '[{"attempt": 1, "status": "timeout", "error": {"error": "TimeoutError", "message": "run timed out"}}]'
        WHERE cron_id = $1 AND status = 'pending'`,
      [ids.ops],
    );
    await db.pool.query(
      `INSERT INTO cron_last_runs (cron_id, last_run_status, last_run_error, last_run_at)
       VALUES ($1, 'error', 'RuntimeError: the model said no', now() - interval '40 minutes')
       ON CONFLICT (cron_id) DO UPDATE
          SET last_run_status = EXCLUDED.last_run_status, last_run_error = EXCLUDED.last_run_error, last_run_at = EXCLUDED.last_run_at`,
      [ids.ops],
    );
    // No scheduler runs here: an every-5-minutes cron would turn overdue ("… ago") at the next
    // multiple of 5 minutes, mid-test. Its next occurrence goes to a whole hour an hour or two ahead.
    await db.pool.query(`UPDATE crons SET next_run_date = date_trunc('hour', now()) + interval '2 hours' WHERE cron_id = $1`, [ids.ops]);
  });

  after(() =>
    teardown(
      () => browser?.close(),
      () => open?.close(),
      () => keyed?.close(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  describe('AUTH_MODE=none', () => {
    let context: BrowserContext;
    let page: Page;
    let outside: string[];
    let errors: string[];
    before(async () => {
      context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      context.setDefaultTimeout(5000);
      ({ page, outside, errors } = await newPage(context));
    });
    after(async () => {
      await context?.close();
    });
    // Each test ends with no console error and no request outside this machine.
    const clean = () => {
      assert.deepEqual(errors, [], 'console errors');
      assert.deepEqual(outside, [], 'requests outside 127.0.0.1');
    };

    test('serves the page and its assets from the api, offline, under a strict CSP', async () => {
      const res = await fetch(`${open.url}/ui`, { redirect: 'manual' });
      assert.equal(res.status, 301);
      assert.equal(res.headers.get('location'), '/ui/');
      const index = await fetch(`${open.url}/ui/`);
      assert.equal(index.status, 200);
      assert.match(index.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      const html = await index.text();
      assert.doesNotMatch(html, /https?:\/\//, 'no absolute URL in the page');
      const vendor = await fetch(`${open.url}/ui/vendor/cronstrue.js`);
      assert.equal(vendor.status, 200);
      assert.match(vendor.headers.get('content-type') ?? '', /javascript/);
      assert.equal((await fetch(`${open.url}/ui/nope.js`)).status, 404);
      assert.equal((await fetch(`${keyed.url}/ui/app.js`)).status, 200, 'the assets need no key');
    });

    test('lists the crons with their schedule in words, timezone, next fire time and last run', async () => {
      await page.goto(`${open.url}/ui/`);
      const rows = page.locator('#crons-table tbody tr');
      await rows.first().waitFor();
      assert.equal(await rows.count(), 3);
      const ops = page.locator(`tr[data-cron-id="${ids.ops}"]`);
      assert.equal(await ops.locator('.cron-link').textContent(), 'Every 5 minutes');
      assert.equal(await ops.locator('td.tz').textContent(), 'Europe/Paris');
      assert.match((await ops.locator('td.next').textContent()) ?? '', /^in /);
      assert.match((await ops.locator('td.last').textContent()) ?? '', /error.*RuntimeError: the model said no/);
      const report = page.locator(`tr[data-cron-id="${ids.report}"]`);
      assert.match((await report.locator('.cron-link').textContent()) ?? '', /At 09:00, Monday through Friday/);
      assert.match((await report.locator('td.state').textContent()) ?? '', /paused/);
      await shot(page, 'crons');
      clean();
    });

    test('filters by metadata, state, last status and text', async () => {
      const count = () => page.locator('#crons-table tbody tr').count();
      await page.fill('#filters input[name=metadata]', 'team=ops');
      await page.click('#filters button[type=submit]');
      await page.waitForFunction(() => (globalThis as any).location.hash.includes('metadata='));
      await page.locator('#summary', { hasText: '1–1 of 1' }).waitFor();
      assert.equal(await count(), 1);
      await page.click('text=Clear');
      await page.locator('#summary', { hasText: '1–3 of 3' }).waitFor();
      await page.selectOption('#filters select[name=enabled]', 'false');
      await page.locator('#summary', { hasText: '1–1 of 1' }).waitFor();
      assert.equal(await page.locator(`tr[data-cron-id="${ids.report}"]`).count(), 1);
      await page.click('text=Clear');
      await page.locator('#summary', { hasText: '1–3 of 3' }).waitFor();
      await page.selectOption('#filters select[name=status]', 'error');
      await page.locator('#summary', { hasText: '1 shown of 3 loaded' }).waitFor();
      assert.equal(await page.locator(`tr[data-cron-id="${ids.ops}"]`).count(), 1);
      await page.click('text=Clear');
      // The cleared page's own summary (the one shown, "1 shown of 3 loaded", also reads "of 3"):
      // until its hashchange has run, the form on screen is the last-status one, and text typed
      // into it is lost with it (issue 22: seen failing on a quiet machine, the fill first).
      await page.locator('#summary', { hasText: '1–3 of 3' }).waitFor();
      await page.fill('#filters input[name=q]', 'data 02:30');
      await page.click('#filters button[type=submit]');
      await page.locator('#summary', { hasText: '1 shown' }).waitFor();
      assert.equal(await page.locator(`tr[data-cron-id="${ids.nightly}"]`).count(), 1);
      await page.click('text=Clear');
      await page.locator('#summary', { hasText: '1–3 of 3' }).waitFor();
      clean();
    });

    test('a cron: description, the next 10 fire times, the ledger as a timeline', async () => {
      await page.click(`tr[data-cron-id="${ids.ops}"] .cron-link`);
      await page.locator('#ledger-table').waitFor();
      await page.locator('#next-table').waitFor();
      assert.equal(await page.locator('#cron-description').textContent(), 'Every 5 minutes');
      assert.equal(await page.locator('#next-table tbody tr').count(), 10);
      assert.match((await page.locator('#next-table thead').textContent()) ?? '', /Europe\/Paris/);
      // 5 written above + the run its creation started.
      assert.equal(await page.locator('#ledger-table tbody tr').count(), 6);
      assert.equal(await page.locator('#timeline .tick').count(), 6 + 6, 'one block per occurrence, plus the legend');
      const failed = page.locator('#ledger-table tr[data-status=error]');
      assert.match((await failed.textContent()) ?? '', /RuntimeError: the model said no/);
      assert.match((await failed.locator('td.lag').textContent()) ?? '', /^2\.0 s$/);
      assert.match((await failed.textContent()) ?? '', /2\.0 s.*1\.0 s.*2\.0 s/, 'fire lag, queue wait, duration');
      const skipped = page.locator('#ledger-table tr[data-status=skipped]');
      assert.equal(await skipped.count(), 2);
      assert.match((await skipped.allTextContents()).join(' '), /reason: overlap.*reason: missed/);
      const successes = (await page.locator('#ledger-table tr[data-status=success]').allTextContents()).join(' ');
      assert.match(successes, /2 missed before it/);
      assert.match(successes, /\{"summary":"3 new articles on agents"\}/, 'the output excerpt the ledger kept');
      assert.match((await page.locator('#ledger-table tr[data-status=enqueued]').textContent()) ?? '', /create/);
      // Attempts, each earlier attempt's error, the planned start, why a pending one waits.
      const retried = page.locator('#ledger-table tr[data-status=success]', { hasText: '2 missed before it' });
      assert.match((await retried.locator('td.attempts').textContent()) ?? '', /^2#1 error: RateLimited: 429 Too Many Requests$/);
      assert.match(successes, /planned start \+7\.0 s/);
      assert.match((await page.locator('#ledger-table tr[data-status=enqueued] td').nth(2).textContent()) ?? '', /waiting for retry backoff until /);
      await shot(page, 'cron');
      clean();
    });

    test('pause with a note and resume: the API shows enabled false, then true', async () => {
      // A periodic refresh's cron, read before the pause and answered after it (issue 22, a race
      // under load): held here, it must not show the cron active again.
      const cronUrl = `**/runs/crons/${ids.ops}`;
      let held = (): void => undefined;
      const heldUntil = new Promise<void>((resolve) => (held = resolve));
      let release = (): void => undefined;
      const released = new Promise<void>((resolve) => (release = resolve));
      let first = true;
      await page.route(cronUrl, async (route) => {
        if (!first || route.request().method() !== 'GET') return route.fallback();
        first = false;
        const response = await route.fetch();
        held();
        await released;
        return route.fulfill({ response });
      });
      await page.evaluate(() => (globalThis as any).document.dispatchEvent(new Event('visibilitychange')));
      await heldUntil;
      await page.fill('#pause-note', 'until the new model key arrives');
      await page.click('#pause');
      await page.locator('#resume').waitFor();
      // The refresh goes on to the ledger once its cron is handled.
      const ledgerAsked = page.waitForRequest((r) => r.url().includes(`/runs/crons/${ids.ops}/occurrences?`));
      release();
      await ledgerAsked;
      await page.locator('#ledger[aria-busy=false]').waitFor();
      await page.unroute(cronUrl);
      assert.match((await page.locator('.cron-head').textContent()) ?? '', /paused/, 'the older answer drew the cron active again');
      const paused = (await open.call('GET', `/runs/crons/${ids.ops}`)).body;
      assert.equal(paused.enabled, false);
      assert.equal(paused.paused_reason, 'until the new model key arrives');
      await page.locator('#paused-next', { hasText: 'If resumed now, it would fire at' }).waitFor();
      assert.match((await page.locator('.cron-head').textContent()) ?? '', /paused.*until the new model key arrives/);
      await page.click('#resume');
      await page.locator('#pause').waitFor();
      assert.equal((await open.call('GET', `/runs/crons/${ids.ops}`)).body.enabled, true);
      await page.locator('#paused-next').waitFor({ state: 'detached' });
      await page.locator('#next-table').waitFor();
      clean();
    });

    test('retry a failed occurrence from the ledger', async () => {
      const failed = (await open.call('GET', `/runs/crons/${ids.ops}/occurrences?limit=20`)).body.find((o: any) => o.status === 'error');
      await page.click(`button[data-retry="${failed.scheduled_for}"]`);
      await page.locator('#flash', { hasText: 'Retrying the occurrence' }).waitFor();
      const row = page.locator('#ledger-table tbody tr', { hasText: 'retried 1×' });
      await row.waitFor();
      assert.equal(await row.getAttribute('data-status'), 'enqueued');
      const after = (await open.call('GET', `/runs/crons/${ids.ops}/occurrences?limit=20`)).body.find((o: any) => o.scheduled_for === failed.scheduled_for);
      assert.equal(after.retries, 1);
      clean();
    });

    test('backfill a past range', async () => {
      const day = new Date(Date.now() - 3 * 86400_000).toISOString().slice(0, 10);
      await page.click('#backfill');
      await page.fill('#backfill-from', `${day}T10:00:00`);
      await page.fill('#backfill-to', `${day}T10:20:00`);
      // A periodic refresh answered while the backfill's own ledger load is on its way (issue 22,
      // seen under load: every row twice): that load is held until the refresh has drawn.
      let held = (): void => undefined;
      const heldUntil = new Promise<void>((resolve) => (held = resolve));
      let release = (): void => undefined;
      const released = new Promise<void>((resolve) => (release = resolve));
      let first = true;
      await page.route(`**/runs/crons/${ids.ops}/occurrences?*`, async (route) => {
        if (first) {
          first = false;
          held();
          await released;
        }
        return route.fallback();
      });
      await page.click('#backfill-go');
      await page.locator('#flash', { hasText: 'Backfill: fired 5 of 5 occurrences' }).waitFor();
      await heldUntil;
      // What poll() does every few seconds, now.
      await page.evaluate(() => (globalThis as any).document.dispatchEvent(new Event('visibilitychange')));
      await page.locator('#ledger-table tbody tr', { hasText: 'backfill' }).nth(4).waitFor();
      release();
      await page.locator('#ledger[aria-busy=false]').waitFor();
      await page.unroute(`**/runs/crons/${ids.ops}/occurrences?*`);
      assert.equal(await page.locator('#ledger-table tbody tr', { hasText: 'backfill' }).count(), 5);
      // Three days late is the backfill's age, not a fire lag: shown apart.
      const lag = page.locator('#ledger-table tbody tr', { hasText: 'backfill' }).first().locator('td.lag');
      assert.match((await lag.textContent()) ?? '', /^—backfill, .+ after$/);
      const ledger = (await open.call('GET', `/runs/crons/${ids.ops}/occurrences?limit=50`)).body;
      assert.equal(ledger.filter((o: any) => o.trigger === 'backfill').length, 5);
      assert.equal(await page.locator('#ledger-table tbody tr').count(), ledger.length, 'each occurrence once');
      clean();
    });

    test('trigger now adds a manual occurrence to the ledger', async () => {
      await page.click('#trigger');
      await page.locator('#ledger-table tbody tr', { hasText: 'manual' }).waitFor();
      const ledger = (await open.call('GET', `/runs/crons/${ids.ops}/occurrences?limit=20`)).body;
      assert.equal(ledger.filter((o: any) => o.trigger === 'manual').length, 1);
      clean();
    });

    test('edit the schedule with its words live', async () => {
      await page.click('#edit');
      await page.fill('#schedule', '0 12 * * *');
      await page.locator('#schedule-words', { hasText: 'At 12:00' }).waitFor();
      await page.fill('#timezone', 'Asia/Tokyo');
      // The server's preview: five fire times at noon in Tokyo (the list of the schedule alone,
      // still in Paris time, is there until the preview of the new timezone replaces it).
      await page.locator('#schedule-preview li', { hasText: 'GMT+9' }).nth(4).waitFor();
      assert.equal(await page.locator('#schedule-preview li').count(), 5);
      assert.match((await page.locator('#schedule-preview li').first().textContent()) ?? '', /12:00:00 GMT\+9/);
      await page.click('#save-schedule');
      await page.locator('#cron-description', { hasText: 'At 12:00' }).waitFor();
      const cron = (await open.call('GET', `/runs/crons/${ids.ops}`)).body;
      assert.equal(cron.schedule, '0 12 * * *');
      assert.equal(cron.timezone, 'Asia/Tokyo');
      // Redrawn after the save: the next fire times are Tokyo's noons now.
      await page.locator('#next-table tbody tr', { hasText: '12:00:00 GMT+9' }).nth(9).waitFor();
      clean();
    });

    test('delete asks first, then deletes', async () => {
      await page.click('#delete');
      await page.click('#cancel-delete');
      assert.equal((await open.call('GET', `/runs/crons/${ids.nightly}`)).status, 200);
      await page.goto(`${open.url}/ui/#/crons/${ids.nightly}`);
      await page.locator('#ledger-table').waitFor();
      await page.click('#delete');
      await page.click('#confirm-delete');
      await page.waitForFunction(() => (globalThis as any).location.hash === '#/crons');
      await page.locator('#summary', { hasText: 'of 2' }).waitFor();
      assert.equal((await open.call('GET', `/runs/crons/${ids.nightly}`)).status, 404);
      clean();
    });

    test('bulk pause and resume of a selection', async () => {
      await page.check(`tr[data-cron-id="${ids.ops}"] input[type=checkbox]`);
      await page.check(`tr[data-cron-id="${ids.report}"] input[type=checkbox]`);
      await page.click('#bulk-pause');
      await page.locator('#flash', { hasText: '2 crons paused' }).waitFor();
      for (const id of [ids.ops, ids.report]) assert.equal((await open.call('GET', `/runs/crons/${id}`)).body.enabled, false);
      await page.locator(`tr[data-cron-id="${ids.ops}"] td.state`, { hasText: 'paused' }).waitFor();
      await page.locator('th input[type=checkbox]').check();
      await page.click('#bulk-resume');
      await page.locator('#flash', { hasText: '2 crons resumed' }).waitFor();
      for (const id of [ids.ops, ids.report]) assert.equal((await open.call('GET', `/runs/crons/${id}`)).body.enabled, true);
      clean();
    });

    test('create a cron from the form', async () => {
      await page.click('#new-cron');
      await page.locator('#new-cron-form').waitFor();
      await page.fill('#schedule', '*/10 * * * *');
      await page.locator('#schedule-words', { hasText: 'Every 10 minutes' }).waitFor();
      await page.fill('#timezone', 'UTC');
      await page.fill('#input', '{"topic": "created in the ui"}');
      await page.fill('#metadata', '{"team": "ui"}');
      await page.check('#paused');
      await page.fill('#retry-max-attempts', '4');
      await page.fill('#jitter', '90');
      await page.locator('#schedule-preview li').nth(4).waitFor();
      await shot(page, 'new-cron');
      await page.click('#create');
      await page.locator('#cron-description', { hasText: 'Every 10 minutes' }).waitFor();
      const id = decodeURIComponent(await page.evaluate<string>("location.hash.split('/')[2]"));
      const cron = (await open.call('GET', `/runs/crons/${id}`)).body;
      assert.equal(cron.enabled, false);
      assert.deepEqual(cron.metadata, { team: 'ui' });
      assert.deepEqual(cron.payload.input, { topic: 'created in the ui' });
      assert.deepEqual(cron.payload.retry_policy, { max_attempts: 4 });
      assert.equal(cron.jitter_seconds, 90);
      await page.locator('#next-table thead', { hasText: 'Starts (jitter)' }).waitFor();
      assert.match((await page.locator('#cron-page, section.card').allTextContents()).join(' '), /Retry policyup to 4 attempts/);
      clean();
    });

    test('runs in progress, maintenance jobs and health', async () => {
      // The ops cron's first run, as a worker running it would leave it.
      const { rows } = await db.pool.query(
        `UPDATE runs SET status = 'running', started_at = now() - interval '90 seconds' WHERE cron_id = $1 AND status = 'pending' RETURNING run_id, thread_id`,
        [ids.ops],
      );
      await db.pool.query(`UPDATE threads SET status = 'busy' WHERE thread_id = ANY($1::uuid[])`, [rows.map((r) => r.thread_id)]);
      await page.click('nav a[data-page=runs]');
      const running = page.locator(`#runs-table tr[data-run-id="${rows[0].run_id}"]`);
      await running.waitFor();
      assert.match((await running.textContent()) ?? '', /running.*1 min 3\d s/);
      assert.match((await running.textContent()) ?? '', /attempt 2/, 'its second attempt (one logged)');
      await shot(page, 'runs');
      await running.locator('button', { hasText: 'Cancel' }).click();
      await page.locator('#flash', { hasText: `Cancelled run ${rows[0].run_id.slice(0, 8)}` }).waitFor();
      await running.waitFor({ state: 'detached' });
      assert.notEqual((await open.call('GET', `/threads/${rows[0].thread_id}/runs/${rows[0].run_id}`)).body.status, 'running');
      await page.click('nav a[data-page=maintenance]');
      await page.locator('#maintenance-table').waitFor();
      assert.ok((await page.locator('#maintenance-table tbody tr').count()) >= 5);
      await page.click('button[data-trigger=retention_purge]');
      await page.locator('#flash', { hasText: 'retention_purge: created' }).waitFor();
      await shot(page, 'maintenance');
      await page.click('nav a[data-page=health]');
      await page.locator('#lag-chart').waitFor();
      assert.match((await page.locator('#health-cards').textContent()) ?? '', /Database.*ok/);
      // /health's status and the saturation figures (queue latency, runs waiting by reason, lag to start).
      assert.match((await page.locator('#health-cards').textContent()) ?? '', /^Overall(ok|degraded)/);
      assert.match((await page.locator('#queue-latency').textContent()) ?? '', /^\d+(\.\d)? (ms|s)$|min/);
      assert.match((await page.locator('#runs-waiting').textContent()) ?? '', /^\d+ for a worker · \d+ for a retry · \d+ for a limit$/);
      assert.match((await page.locator('#start-lag').textContent()) ?? '', /^(p50 .* · p95 .* · p99 .*|no run started)$/);
      assert.match((await page.locator('#chart-summary').textContent()) ?? '', /^5 fired and 2 skipped/);
      assert.ok((await page.locator('#lag-chart rect.bar').count()) >= 4);
      assert.equal(await page.locator('#gauges').count(), 1, 'the deployment gauges (AUTH_MODE=none: everyone is admin)');
      await shot(page, 'health');
      clean();
    });

    test('usable 400 px wide: nothing wider than the screen', async () => {
      await page.setViewportSize({ width: 400, height: 800 });
      for (const hash of ['#/crons', `#/crons/${ids.ops}`, '#/health']) {
        await page.goto(`${open.url}/ui/${hash}`);
        await page.locator('#crons-table, #ledger-table, #lag-chart').first().waitFor();
        const width = await page.evaluate<number>('document.documentElement.scrollWidth');
        assert.ok(width <= 400, `${hash} is ${width} px wide`);
      }
      await page.goto(`${open.url}/ui/#/crons`);
      await page.locator('#crons-table').waitFor();
      await shot(page, 'crons-400px');
      clean();
    });
  });

  describe('everyday use (issue 19): names, live pages, runs, forms', () => {
    let context: BrowserContext;
    let page: Page;
    let outside: string[];
    let errors: string[];
    before(async () => {
      context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      context.setDefaultTimeout(5000);
      // Live pages refresh every 300 ms here (5 s by default), so a test waits for little.
      await context.addInitScript(() => (globalThis as any).localStorage.setItem('agentcron.pollMs', '300'));
      ({ page, outside, errors } = await newPage(context));
    });
    after(async () => {
      await context?.close();
    });
    const clean = () => {
      assert.deepEqual(errors, [], 'console errors');
      assert.deepEqual(outside, [], 'requests outside 127.0.0.1');
    };
    const make = async (body: Record<string, unknown>): Promise<string> => {
      const res = await open.call('POST', '/runs/crons', { assistant_id: 'echo', ...body });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.cron_id;
    };

    test('names title crons and search finds them; a finished cron reads finished; the list and a ledger update by themselves', async () => {
      ids.named = await make({ schedule: '0 6 * * *', metadata: { name: 'Morning digest', team: 'news' }, enabled: false });
      ids.finished = await make({ schedule: '0 7 * * *', enabled: false });
      await db.pool.query(`UPDATE crons SET end_time = now() - interval '1 minute', finished_at = now(), next_run_date = NULL WHERE cron_id = $1`, [
        ids.finished,
      ]);
      await page.goto(`${open.url}/ui/#/crons`);
      const named = page.locator(`tr[data-cron-id="${ids.named}"]`);
      await named.waitFor();
      assert.equal(await named.locator('.cron-link').textContent(), 'Morning digest');
      assert.match((await named.locator('td.cron .sub').textContent()) ?? '', /^At 06:00 · 0 6 \* \* \*/);
      assert.equal((await page.locator(`tr[data-cron-id="${ids.finished}"] td.state`).textContent())?.trim(), 'finished');
      await page.evaluate(() => ((globalThis as any).notReloaded = true));
      // Selected, then changed elsewhere: the row turns active without a reload, still selected.
      await named.locator('input[type=checkbox]').check();
      await open.call('PATCH', `/runs/crons/${ids.named}`, { enabled: true });
      await page.locator(`tr[data-cron-id="${ids.named}"] td.state`, { hasText: 'active' }).waitFor();
      assert.equal(await page.locator(`tr[data-cron-id="${ids.named}"] input[type=checkbox]`).isChecked(), true);
      assert.equal(await page.locator('#selection').textContent(), '1 selected');
      assert.equal(await page.evaluate(() => (globalThis as any).notReloaded), true);
      await page.fill('#filters input[name=q]', 'morning digest');
      await page.click('#filters button[type=submit]');
      await page.locator('#summary', { hasText: '1 shown' }).waitFor();
      // The cron's page: titled by its name; a trigger made elsewhere appears in its ledger by itself.
      await page.click(`tr[data-cron-id="${ids.named}"] .cron-link`);
      await page.locator('#no-occurrences').waitFor();
      assert.equal(await page.locator('#cron-name').textContent(), 'Morning digest');
      assert.equal(await page.locator('#cron-description').textContent(), 'At 06:00');
      await page.evaluate(() => ((globalThis as any).notReloaded = true));
      assert.equal((await open.call('POST', `/runs/crons/${ids.named}/trigger`)).status, 200);
      await page.locator('#ledger-table tbody tr', { hasText: 'manual' }).waitFor();
      assert.equal(await page.evaluate(() => (globalThis as any).notReloaded), true);
      await shot(page, 'cron-named');
      // Health too: its chart counts a trigger made elsewhere without a reload.
      await page.click('nav a[data-page=health]');
      const summary = page.locator('#chart-summary');
      await summary.waitFor();
      const fired = async () => Number(/^(\d+) fired/.exec((await summary.textContent()) ?? '')?.[1]);
      const before = await fired();
      await page.evaluate(() => ((globalThis as any).notReloaded = true));
      assert.equal((await open.call('POST', `/runs/crons/${ids.named}/trigger`)).status, 200);
      await page.waitForFunction(
        (n) => Number(/^(\d+) fired/.exec((globalThis as any).document.querySelector('#chart-summary')?.textContent ?? '')?.[1]) > n,
        before,
      );
      assert.equal(await page.evaluate(() => (globalThis as any).notReloaded), true);
      clean();
    });

    test('Runs: a stateless run that is running, pending runs, recent failures; a run page with output, error and cancel', async () => {
      const post = async (path: string, body: unknown) => {
        const res = await open.call('POST', path, body);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body;
      };
      const stateless = await post('/runs', { assistant_id: 'echo', input: { n: 1 } });
      const failed = await post('/runs', { assistant_id: 'echo', input: { n: 2 } });
      const thread = await post('/threads', {});
      const kept = await post(`/threads/${thread.thread_id}/runs`, { assistant_id: 'echo', input: { n: 3 } });
      const done = await post(`/threads/${thread.thread_id}/runs`, { assistant_id: 'echo', input: { n: 4 } });
      await db.pool.query(`UPDATE runs SET status = 'running', started_at = now() - interval '5 seconds' WHERE run_id = ANY($1::uuid[])`, [
        [stateless.run_id, kept.run_id],
      ]);
      await db.pool.query(
        `UPDATE runs SET status = 'error', started_at = now(), ended_at = now(), error = '{"error": "Boom", "message": "the model said no"}' WHERE run_id = $1`,
        [failed.run_id],
      );
      await db.pool.query(`UPDATE runs SET status = 'success', started_at = now(), ended_at = now(), output = '{"summary": "all good"}' WHERE run_id = $1`, [
        done.run_id,
      ]);
      await page.click('nav a[data-page=runs]');
      await page.locator(`#runs-table tr[data-run-id="${stateless.run_id}"]`).waitFor();
      assert.match((await page.locator(`#runs-table tr[data-run-id="${stateless.run_id}"]`).textContent()) ?? '', /running/);
      assert.match((await page.locator(`#failed-table tr[data-run-id="${failed.run_id}"]`).textContent()) ?? '', /Boom: the model said no/);
      assert.ok((await page.locator('#pending-table tbody tr').count()) >= 1, "the pending runs (crons' first runs) are listed");
      await shot(page, 'runs-all');
      await page.goto(`${open.url}/ui/#/runs/${done.run_id}`);
      await page.locator('#run-output', { hasText: 'all good' }).waitFor();
      assert.match((await page.locator('#run-facts').textContent()) ?? '', /success/);
      await page.goto(`${open.url}/ui/#/runs`);
      await page.click(`#runs-table tr[data-run-id="${kept.run_id}"] .run-link`);
      await page.locator('#run-page').waitFor();
      await page.click(`#run-page button[data-cancel="${kept.run_id}"]`);
      await page.locator('#run-facts', { hasText: 'interrupted' }).waitFor();
      assert.equal((await open.call('GET', `/runs/${kept.run_id}`)).body.status, 'interrupted');
      await page.goto(`${open.url}/ui/#/runs/${failed.run_id}`);
      await page.locator('#run-error', { hasText: '"message": "the model said no"' }).waitFor();
      clean();
    });

    test(
      'forms: create with name, webhook, end time and pause note; edit input and metadata; backfill with a count and an overlap choice; ' +
        'bulk trigger and delete, confirmed',
      async () => {
        await page.goto(`${open.url}/ui/#/new`);
        await page.locator('#new-cron-form').waitFor();
        await page.fill('#name', 'Weekly report');
        await page.fill('#schedule', '*/5 * * * *');
        await page.selectOption('#overlap', 'skip');
        await page.fill('#webhook', 'https://example.com/hook');
        await page.fill('#end-time', '2099-01-01T00:00:00');
        await page.check('#paused');
        await page.fill('#create-pause-note', 'x'.repeat(280));
        await page.click('#create');
        await page.locator('#cron-name', { hasText: 'Weekly report' }).waitFor();
        const id = decodeURIComponent(await page.evaluate<string>("location.hash.split('/')[2]"));
        const cron = (await open.call('GET', `/runs/crons/${id}`)).body;
        assert.equal(cron.metadata.name, 'Weekly report');
        assert.equal(cron.payload.webhook, 'https://example.com/hook');
        assert.equal(cron.end_time, '2099-01-01T00:00:00.000Z');
        assert.equal(cron.paused_reason, 'x'.repeat(280));

        await page.click('#edit-fields');
        await page.fill('#edit-input', '{"topic": "edited"}');
        await page.fill('#edit-metadata', '{"team": "reports"}');
        await page.click('#save-fields');
        await page.locator('#flash', { hasText: 'Saved' }).waitFor();
        const edited = (await open.call('GET', `/runs/crons/${id}`)).body;
        assert.deepEqual(edited.payload.input, { topic: 'edited' });
        assert.deepEqual(edited.metadata, { team: 'reports', name: 'Weekly report' });
        // An empty input field leaves the input as it is (the API takes no null input on an update).
        await page.click('#edit-fields');
        await page.fill('#edit-input', '');
        await page.fill('#edit-metadata', '{"team": "ops"}');
        await page.click('#save-fields');
        await page.locator('#fields-panel').waitFor({ state: 'detached' });
        const kept = (await open.call('GET', `/runs/crons/${id}`)).body;
        assert.deepEqual([kept.payload.input, kept.metadata], [{ topic: 'edited' }, { team: 'ops', name: 'Weekly report' }]);

        // 5 occurrences in the range; the cron's rule (skip) would fire one, "every occurrence" fires all.
        const day = new Date(Date.now() - 2 * 86400_000).toISOString().slice(0, 10);
        await page.click('#backfill');
        await page.fill('#backfill-from', `${day}T10:00:00`);
        await page.fill('#backfill-to', `${day}T10:20:00`);
        await page.locator('#backfill-count', { hasText: 'This range holds 5 occurrences' }).waitFor();
        await page.locator('#backfill-go', { hasText: 'Fire 5 occurrences' }).waitFor();
        // A reversed range has no count: the button no longer names the last range's.
        await page.fill('#backfill-to', `${day}T09:00:00`);
        await page.locator('#backfill-count', { hasText: 'The end is before the start.' }).waitFor();
        assert.equal(await page.textContent('#backfill-go'), 'Fire these occurrences');
        await page.fill('#backfill-to', `${day}T10:20:00`);
        await page.locator('#backfill-count', { hasText: 'This range holds 5 occurrences' }).waitFor();
        await page.selectOption('#backfill-overlap', 'allow');
        await page.click('#backfill-go');
        await page.locator('#flash', { hasText: 'Backfill: fired 5 of 5 occurrences' }).waitFor();

        // Bulk: trigger, then delete, each after a confirmation.
        const one = await make({ schedule: '0 4 * * *', metadata: { name: 'Bulk one' }, enabled: false });
        const other = await make({ schedule: '0 5 * * *', metadata: { name: 'Bulk two' }, enabled: false });
        await page.goto(`${open.url}/ui/#/crons`);
        for (const c of [one, other]) await page.check(`tr[data-cron-id="${c}"] input[type=checkbox]`);
        await page.click('#bulk-trigger');
        await page.locator('#bulk-confirm', { hasText: 'Start a run of each of 2 crons now' }).waitFor();
        await page.click('#bulk-confirm-go');
        await page.locator('#flash', { hasText: '2 crons triggered' }).waitFor();
        for (const c of [one, other]) {
          const ledger = (await open.call('GET', `/runs/crons/${c}/occurrences?limit=50`)).body;
          assert.equal(ledger.filter((o: any) => o.trigger === 'manual').length, 1);
        }
        await page.click('#bulk-delete');
        await page.locator('#bulk-confirm', { hasText: 'Delete 2 crons' }).waitFor();
        await page.click('#bulk-confirm-cancel');
        assert.equal((await open.call('GET', `/runs/crons/${other}`)).status, 200, 'cancel deletes nothing');
        await page.click('#bulk-delete');
        await page.click('#bulk-confirm-go');
        await page.locator('#flash', { hasText: '2 crons deleted' }).waitFor();
        for (const c of [one, other]) assert.equal((await open.call('GET', `/runs/crons/${c}`)).status, 404);
        await page.locator(`tr[data-cron-id="${other}"]`).waitFor({ state: 'detached' });
        clean();
      },
    );

    test('/docs fits a phone (400 px) and shows its examples', async () => {
      const phone = await context.newPage();
      try {
        await phone.setViewportSize({ width: 400, height: 800 });
        await phone.goto(`${open.url}/docs`);
        await phone.locator('pre.curl').first().waitFor();
        const width = await phone.evaluate<number>('document.documentElement.scrollWidth');
        assert.ok(width <= 400, `/docs is ${width} px wide`);
        await phone.screenshot({ path: `${SHOTS}/docs-400px.png` });
      } finally {
        await phone.close();
      }
    });
  });

  describe('AUTH_MODE=api_key', () => {
    test("asks for a key, keeps it for the session, and shows only that user's crons", async () => {
      const context = await browser.newContext();
      context.setDefaultTimeout(5000);
      const { page, outside, errors } = await newPage(context);
      try {
        await page.goto(`${keyed.url}/ui/`);
        await page.locator('#signin').waitFor();
        await shot(page, 'signin');
        // A wrong key is refused (the one console error here: the API's 401).
        await page.fill('#api-key', 'wrong');
        await page.click('#signin button[type=submit]');
        await page.locator('#signin-error', { hasText: 'refused' }).waitFor();
        assert.equal(errors.length, 1);
        assert.match(errors[0], /401/);
        errors.length = 0;

        await page.fill('#api-key', KEYS.alice);
        await page.click('#signin button[type=submit]');
        await page.locator('#crons-table').waitFor();
        const shown = await page
          .locator('#crons-table tbody tr')
          .evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: Record<string, string> }).dataset.cronId));
        assert.deepEqual(shown.sort(), [ids.alice1, ids.alice2].sort());
        assert.equal(await page.evaluate("sessionStorage.getItem('agentcron.apiKey')"), KEYS.alice);
        assert.equal(await page.locator('nav a[data-page=maintenance]').isVisible(), false);

        // A reload keeps the key; the cron page and the health page show alice's only.
        await page.reload();
        await page.locator('#crons-table').waitFor();
        await page.click(`tr[data-cron-id="${ids.alice1}"] .cron-link`);
        await page.locator('#ledger-table').waitFor();
        await page.click('nav a[data-page=health]');
        await page.locator('#lag-chart').waitFor();
        assert.match((await page.locator('#chart-summary').textContent()) ?? '', /of 2 crons/);
        assert.equal(await page.locator('#gauges').count(), 0, 'deployment gauges are for admin keys');

        // Bob's cron answers as a missing one (the API's 404 is the console error).
        await page.goto(`${keyed.url}/ui/#/crons/${ids.bob}`);
        await page.locator('text=Cron not found').waitFor();
        assert.equal(errors.length, 1);
        assert.match(errors[0], /404/);
        errors.length = 0;

        // Signing out forgets the key.
        await page.goto(`${keyed.url}/ui/#/crons`);
        await page.locator('#crons-table').waitFor();
        await page.click('#signout');
        await page.locator('#signin').waitFor();
        assert.equal(await page.evaluate("sessionStorage.getItem('agentcron.apiKey')"), null);
        assert.deepEqual(errors, []);
        assert.deepEqual(outside, []);
      } finally {
        await context.close();
      }
    });

    test("an admin key sees every user's crons, with their owners, and the maintenance jobs", async () => {
      const context = await browser.newContext();
      context.setDefaultTimeout(5000);
      const { page, outside, errors } = await newPage(context);
      try {
        await page.goto(`${keyed.url}/ui/`);
        await page.fill('#api-key', KEYS.admin);
        await page.click('#signin button[type=submit]');
        await page.locator('#crons-table').waitFor();
        const shown = await page
          .locator('#crons-table tbody tr')
          .evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: Record<string, string> }).dataset.cronId));
        for (const id of [ids.alice1, ids.alice2, ids.bob, ids.ops]) assert.ok(shown.includes(id), `admin sees ${id}`);
        assert.equal(await page.locator(`tr[data-cron-id="${ids.bob}"] td.owner`).textContent(), 'bob');
        await page.fill('#filters input[name=user]', 'alice');
        await page.click('#filters button[type=submit]');
        await page.locator('#summary', { hasText: '1–2 of 2' }).waitFor();
        // Another user's cron: details and actions through /admin/crons; the ledger is the owner's.
        await page.click(`tr[data-cron-id="${ids.alice1}"] .cron-link`);
        await page.locator('#next-times', { hasText: "owner's key (alice)" }).waitFor();
        await page.click('#pause');
        await page.locator('#resume').waitFor();
        assert.equal((await keyed.call('GET', `/runs/crons/${ids.alice1}`, undefined, KEYS.alice)).body.enabled, false);
        assert.equal(await page.locator('nav a[data-page=maintenance]').isVisible(), true);
        await shot(page, 'admin-cron');
        assert.deepEqual(errors, []);
        assert.deepEqual(outside, []);
      } finally {
        await context.close();
      }
    });
  });
});
