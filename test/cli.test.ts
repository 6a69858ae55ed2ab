import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import { inheritedEnv } from './support/processes.ts';
import type { TestDatabase } from './support/db.ts';
import { startTestQueue } from './support/engine.ts';
import { startInProcessApi, teardown } from './support/inprocess.ts';
import type { InProcessApi } from './support/inprocess.ts';

// The CLI (apps/cli/main.ts) run as a process against the API in this process
// (AUTH_MODE=api_key: alice, bob and an admin key): every command, tables and --json, the exit
// codes (0 done, 1 the API refused, 2 usage) with the API's detail, and tenancy with two keys.

const KEYS = { alice: 'alice-key', bob: 'bob-key', admin: 'admin-key' } as const;
const CLI = new URL('../apps/cli/main.ts', import.meta.url).pathname;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('agentcron CLI', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let api: InProcessApi;

  /** Runs the CLI as `who` (a key's name, or none); env adds or overrides variables. */
  function cli(who: keyof typeof KEYS | null, args: string[], env: Record<string, string> = {}): Promise<Result> {
    const base: Record<string, string | undefined> = { ...inheritedEnv(), AGENTCRON_URL: api.url };
    if (who) base.AGENTCRON_API_KEY = KEYS[who];
    return new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { env: { ...base, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }
  const json = (r: Result) => {
    assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };

  before(async () => {
    db = await createTestDatabase('cli');
    boss = await startTestQueue(db.url);
    await ensureDefaultAssistants(db.pool, ['echo']);
    api = await startInProcessApi(db.pool, boss, db.url, undefined, {
      AUTH_MODE: 'api_key',
      AUTH_API_KEYS: `${KEYS.alice}:alice,${KEYS.bob}:bob`,
      ADMIN_API_KEYS: KEYS.admin,
    });
  });
  after(() =>
    teardown(
      () => api?.close(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  test('usage: --help, and exit 2 for a wrong command line', async () => {
    const [help, none, unknown, missing, wrongOption, badJson, badUrl] = await Promise.all([
      cli(null, ['--help']),
      cli(null, []),
      cli(null, ['crons', 'frobnicate']),
      cli(null, ['crons', 'get']),
      cli(null, ['crons', 'ls', '--schedule', '* * * * *']),
      cli('alice', ['crons', 'create', '--assistant', 'echo', '--schedule', '* * * * *', '--input', '{nope']),
      cli(null, ['crons', 'ls', '--url', 'not a url']),
    ]);
    assert.equal(help.code, 0);
    for (const cmd of ['crons ls|list', 'crons create', 'crons occurrences', 'crons next', 'crons backfill', 'crons retry', 'crons preview', 'health', 'keys'])
      assert.ok(help.stdout.includes(cmd), cmd);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /usage: agentcron/);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "crons frobnicate"/);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /crons get needs <cron_id>/);
    assert.equal(wrongOption.code, 2);
    assert.match(wrongOption.stderr, /takes no option --schedule/);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /--input must be JSON/);
    assert.equal(badUrl.code, 2);
  });

  test('crons: create, ls, get, next, pause, resume, trigger, occurrences, update, rm', async () => {
    const [createdRun, paused] = await Promise.all([
      cli('alice', [
        'crons',
        'create',
        '--assistant',
        'echo',
        '--schedule',
        '*/5 * * * *',
        '--timezone',
        'Europe/Paris',
        '--input',
        '{"topic":"news"}',
        '--metadata',
        '{"team":"ops"}',
        '--json',
      ]),
      cli('alice', ['crons', 'create', '--assistant', 'echo', '--schedule', '0 9 * * 1-5', '--paused']),
    ]);
    const created = json(createdRun);
    assert.equal(created.schedule, '*/5 * * * *');
    assert.equal(created.timezone, 'Europe/Paris');
    assert.deepEqual(created.payload.input, { topic: 'news' });
    const id = created.cron_id;
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stderr, /created cron \S+ \(paused\)/);
    assert.match(paused.stdout, /description:\s+At 09:00, Monday through Friday/);
    assert.match(paused.stdout, /state:\s+paused/);

    // ls: a table for people, --json for scripts, the API's filters; get; next.
    const [table, disabled, byMetadata, byAssistant, shown, next, nextTable] = await Promise.all([
      cli('alice', ['crons', 'ls']),
      cli('alice', ['crons', 'list', '--enabled', 'false', '--json']),
      cli('alice', ['crons', 'ls', '--metadata', 'team=ops', '--json']),
      cli('alice', ['crons', 'ls', '--assistant', 'echo', '--enabled', 'true', '--json']),
      cli('alice', ['crons', 'show', id]),
      cli('alice', ['crons', 'next', id, '--count', '3', '--json']),
      cli('alice', ['crons', 'next', id]),
    ]);
    assert.equal(table.code, 0, table.stderr);
    const [header, ...lines] = table.stdout.trim().split('\n');
    assert.match(header, /^ID\s+NAME\s+SCHEDULE\s+TIMEZONE\s+STATE\s+NEXT_RUN\s+LAST_RUN$/);
    assert.equal(lines.length, 2);
    assert.match(table.stdout, new RegExp(`^${id.slice(0, 8)}\\s+-\\s+\\*/5 \\* \\* \\* \\*\\s+Europe/Paris\\s+active`, 'm'));
    const wide = await cli('alice', ['crons', 'ls', '--wide']);
    assert.match(wide.stdout.split('\n')[0], /^CRON_ID\s+NAME\s+SCHEDULE\s+DESCRIPTION\s+TIMEZONE\s+STATE\s+NEXT_RUN\s+LAST_RUN\s+METADATA$/);
    assert.match(wide.stdout, new RegExp(`${id}\\s+-\\s+\\*/5 \\* \\* \\* \\*\\s+Every 5 minutes\\s+Europe/Paris\\s+active`));
    assert.deepEqual(
      json(disabled).map((c: any) => c.schedule),
      ['0 9 * * 1-5'],
    );
    assert.deepEqual(
      json(byMetadata).map((c: any) => c.cron_id),
      [id],
    );
    assert.deepEqual(
      json(byAssistant).map((c: any) => c.cron_id),
      [id],
    );
    assert.equal(shown.code, 0);
    assert.match(shown.stdout, /description:\s+Every 5 minutes/);
    assert.match(shown.stdout, /timezone:\s+Europe\/Paris/);
    assert.equal(json(next).next.length, 3);
    assert.equal(nextTable.stdout.trim().split('\n').length, 2 + 10, 'a title, a header and 10 times');
    assert.match(nextTable.stdout, /^LOCAL\s+UTC/m);

    const pause = await cli('alice', ['crons', 'pause', id]);
    assert.equal(pause.code, 0);
    assert.match(pause.stdout, new RegExp(`^paused ${id}`));
    const [afterPause, nextPaused] = await Promise.all([cli('alice', ['crons', 'get', id, '--json']), cli('alice', ['crons', 'next', id])]);
    assert.equal(json(afterPause).enabled, false);
    assert.match(nextPaused.stdout, /paused: it fires nothing until resumed/);
    assert.equal(json(await cli('alice', ['crons', 'resume', id, '--json'])).enabled, true);

    const trigger = await cli('alice', ['crons', 'trigger', id]);
    assert.equal(trigger.code, 0, trigger.stderr);
    assert.match(trigger.stdout, /^started run \S+ on thread \S+ \(pending\)/);
    const [ledger, ledgerTable, nothing, invalid] = await Promise.all([
      cli('alice', ['crons', 'occurrences', id, '--json']),
      cli('alice', ['crons', 'occurrences', id]),
      cli('alice', ['crons', 'update', id]),
      cli('alice', ['crons', 'update', id, '--schedule', '61 * * * *']),
    ]);
    assert.deepEqual(
      json(ledger)
        .map((o: any) => o.trigger)
        .sort(),
      ['create', 'manual'],
    );
    assert.match(ledgerTable.stdout, /^SCHEDULED_FOR\s+TRIGGER\s+STATUS\s+REASON\s+ATTEMPTS\s+WAITING\s+LAG\s+WAIT\s+DURATION\s+RUN_ID\s+DETAIL$/m);
    assert.match(ledgerTable.stdout, /\smanual\s+enqueued\s+-\s+0\s+a free worker\s/);
    assert.equal(nothing.code, 2, 'update with nothing to change is a usage error');
    // An API refusal: exit 1 with the API's detail.
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^agentcron: HTTP 422: body\.schedule: /);

    const updated = json(await cli('alice', ['crons', 'update', id, '--schedule', '0 12 * * *', '--timezone', 'Asia/Tokyo', '--json']));
    assert.equal(updated.schedule, '0 12 * * *');
    assert.equal(updated.timezone, 'Asia/Tokyo');

    const rm = await cli('alice', ['crons', 'rm', id]);
    assert.equal(rm.code, 0);
    assert.equal(rm.stdout.trim(), `deleted ${id}`);
    const gone = await cli('alice', ['crons', 'get', id]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /HTTP 404: Cron not found/);
  });

  test('retry policy and jitter: create and update options, shown by get; the ledger shows attempts, earlier errors and why it waits', async () => {
    const created = json(
      await cli('alice', [
        'crons',
        'create',
        '--assistant',
        'echo',
        '--schedule',
        '0 9 * * *',
        '--retry-max-attempts',
        '5',
        '--retry-backoff',
        '3',
        '--jitter',
        '30',
        '--json',
      ]),
    );
    assert.deepEqual(created.payload.retry_policy, { max_attempts: 5, backoff_coefficient: 3 });
    assert.equal(created.jitter_seconds, 30);
    const id = created.cron_id;
    const shown = await cli('alice', ['crons', 'get', id]);
    assert.match(shown.stdout, /jitter:\s+30s/);
    assert.match(shown.stdout, /retry_policy:\s+\{"max_attempts":5,"backoff_coefficient":3\}/);

    // --retry-* on update change only the fields named (the rest of the stored policy stays).
    const merged = json(
      await cli('alice', ['crons', 'update', id, '--retry-initial-interval', '2.5', '--retry-max-interval', '60', '--jitter', '0', '--json']),
    );
    assert.deepEqual(merged.payload.retry_policy, { max_attempts: 5, backoff_coefficient: 3, initial_interval_seconds: 2.5, maximum_interval_seconds: 60 });
    assert.equal(merged.jitter_seconds, 0);
    const [refused, notNumber, cleared] = await Promise.all([
      cli('alice', ['crons', 'create', '--assistant', 'echo', '--schedule', '0 9 * * *', '--retry-max-attempts', '101']),
      cli('alice', ['crons', 'update', id, '--retry-backoff', 'fast']),
      cli('alice', ['crons', 'update', id, '--retry-policy', 'none', '--json']),
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /HTTP 422: body\.retry_policy\.max_attempts: must be at most 100/);
    assert.equal(notNumber.code, 2);
    assert.match(notNumber.stderr, /--retry-backoff must be a number/);
    assert.equal('retry_policy' in json(cleared).payload, false);

    // The create-run waiting for its retry (as the worker leaves it): one attempt logged.
    const runId = created.run_id ?? (await db.pool.query(`SELECT run_id FROM runs WHERE cron_id = $1`, [id])).rows[0].run_id;
    await db.pool.query(
      `UPDATE runs SET waiting = 'retry', not_before = '2099-01-01T00:00:00Z',
              attempt_log = '[{"attempt": 1, "status": "error", "error": {"error": "RateLimited", "message": "429 Too Many Requests"}}]'
        WHERE run_id = $1`,
      [runId],
    );
    const [ledger, table] = await Promise.all([cli('alice', ['crons', 'occurrences', id, '--json']), cli('alice', ['crons', 'occurrences', id])]);
    const [row] = json(ledger);
    assert.equal(row.attempts, 1);
    assert.equal(row.waiting, 'retry');
    assert.equal(row.not_before, '2099-01-01T00:00:00.000Z');
    assert.match(table.stdout, /\screate\s+enqueued\s+-\s+1\s+retry at 2099-01-01T00:00:00Z\s/);
    assert.match(table.stdout, /earlier: #1 error RateLimited: 429 Too Many Requests/);
  });

  test("two keys: no command reaches another user's cron; an admin key with --admin reaches all", async () => {
    const alices = json(await cli('alice', ['crons', 'create', '--assistant', 'echo', '--schedule', '0 8 * * *', '--json'])).cron_id;
    const results = await Promise.all([
      cli('bob', ['crons', 'get', alices]),
      cli('bob', ['crons', 'pause', alices]),
      cli('bob', ['crons', 'trigger', alices]),
      cli('bob', ['crons', 'occurrences', alices]),
      cli('bob', ['crons', 'next', alices]),
      cli('bob', ['crons', 'update', alices, '--schedule', '0 1 * * *']),
      cli('bob', ['crons', 'rm', alices]),
    ]);
    for (const r of results) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /HTTP 404: Cron not found/);
    }
    const [bobs, cron, noKey, flagKey, all, adminTable, userAsAdmin] = await Promise.all([
      cli('bob', ['crons', 'ls', '--json']),
      cli('alice', ['crons', 'get', alices, '--json']),
      cli(null, ['crons', 'ls']),
      cli(null, ['crons', 'ls', '--json', '--api-key', KEYS.alice]),
      cli('admin', ['--admin', 'crons', 'ls', '--json']),
      cli('admin', ['crons', 'ls', '--admin', '--user', 'alice']),
      cli('bob', ['crons', 'ls', '--admin']),
    ]);
    assert.deepEqual(json(bobs), []);
    assert.equal(json(cron).enabled, true);
    assert.equal(json(cron).schedule, '0 8 * * *');
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /HTTP 401: missing API key/);
    assert.ok(
      json(flagKey).some((c: any) => c.cron_id === alices),
      '--api-key overrides the environment',
    );
    assert.ok(json(all).some((c: any) => c.cron_id === alices && c.user_id === 'alice'));
    assert.match(adminTable.stdout.split('\n')[0], /\bOWNER\b/);
    assert.match(adminTable.stdout, /\balice\b/);
    assert.equal(userAsAdmin.code, 1);
    assert.match(userAsAdmin.stderr, /HTTP 403: this endpoint needs an admin key/);
    assert.equal((await cli('admin', ['crons', 'pause', alices, '--admin'])).code, 0);
    assert.equal(json(await cli('alice', ['crons', 'get', alices, '--json'])).enabled, false);
  });

  test('preview (DST marked), backfill, and retry of a failed occurrence', async () => {
    const id = json(await cli('alice', ['crons', 'create', '--assistant', 'echo', '--schedule', '0 10 * * *', '--paused', '--json'])).cron_id;
    const day = new Date(Date.now() - 5 * 86400_000).toISOString().slice(0, 10);
    const last = new Date(Date.now() - 2 * 86400_000).toISOString().slice(0, 10);
    const [preview, previewJson, backfill, backfillUsage] = await Promise.all([
      // 02:30 does not exist in New York on 2030-03-10: it fires at 03:00, marked.
      cli('alice', ['crons', 'preview', '--schedule', '30 2 * * *', '--timezone', 'America/New_York', '--from', '2030-03-08T12:00:00Z', '--count', '3']),
      cli('alice', ['crons', 'preview', '--schedule', '0 9 * * 1-5', '--count', '2', '--json']),
      cli('alice', ['crons', 'backfill', id, '--from', `${day}T00:00:00Z`, '--to', `${last}T23:59:59Z`]),
      cli('alice', ['crons', 'backfill', id, '--from', `${day}T00:00:00Z`]),
    ]);
    assert.equal(preview.code, 0, preview.stderr);
    assert.match(preview.stdout, /^description:\s+At 02:30$/m);
    assert.match(preview.stdout, /^LOCAL\s+UTC\s+NOTE$/m);
    assert.match(preview.stdout, /2030-03-10T03:00:00-04:00\s+2030-03-10T07:00:00Z\s+\S/, 'the DST gap, with its note');
    const p = json(previewJson);
    assert.equal(p.description, 'At 09:00, Monday through Friday');
    assert.equal(p.next.length, 2);
    assert.equal(backfill.code, 0, backfill.stderr);
    assert.match(backfill.stdout, /^occurrences:\s+4$/m);
    assert.match(backfill.stdout, /^fired:\s+4$/m);
    assert.equal(backfillUsage.code, 2);
    assert.match(backfillUsage.stderr, /needs --from <ISO time> and --to <ISO time>/);

    // A backfilled occurrence that failed (as a worker would record it) runs again.
    const ledger = json(await cli('alice', ['crons', 'occurrences', id, '--json']));
    assert.deepEqual([...new Set(ledger.map((o: any) => o.trigger))], ['backfill']);
    const failed = ledger[0].scheduled_for;
    await db.pool.query(`UPDATE runs SET status = 'error' WHERE cron_id = $1 AND scheduled_for = $2`, [id, failed]);
    await db.pool.query(`UPDATE cron_occurrences SET status = 'error', error = 'boom', ended_at = now() WHERE cron_id = $1 AND scheduled_for = $2`, [
      id,
      failed,
    ]);
    const [retry, again] = await Promise.all([cli('alice', ['crons', 'retry', id, failed]), cli('bob', ['crons', 'retry', id, failed])]);
    assert.equal(retry.code, 0, retry.stderr);
    assert.match(retry.stdout.trim(), new RegExp(`^retrying ${failed.replace(/[.]/g, '\\.')}: run \\S+ \\(pending\\), retry 1$`));
    assert.equal(again.code, 1, "bob cannot retry alice's occurrence");
    assert.match(again.stderr, /HTTP 404/);
    const refused = await cli('alice', ['crons', 'retry', id, failed]);
    assert.equal(refused.code, 1, 'an enqueued occurrence is not retried');
    assert.match(refused.stderr, /HTTP 409/);
  });

  test('health, an unreachable API, npm run cli, and keys made through the CLI', async () => {
    const closed = net.createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const viaNpm = new Promise<Result>((resolve) => {
      execFile(
        'npm',
        ['run', '-s', 'cli', '--', 'crons', 'ls', '--json'],
        { env: { ...process.env, AGENTCRON_URL: api.url, AGENTCRON_API_KEY: KEYS.bob }, timeout: 20_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: unknown }).code ?? -1) : 0, stdout, stderr }),
      );
    });
    // `agentcron keys` is the database-side key tool: a key it makes works at once.
    const carol = (async () => {
      const made = await cli(null, ['keys', 'create', '--user', 'carol'], { DATABASE_URL: db.url });
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout.trim(), /^ac_/);
      return cli(null, ['crons', 'ls', '--json'], { AGENTCRON_API_KEY: made.stdout.trim() });
    })();
    const [health, healthJson, down, npm, carols] = await Promise.all([
      cli(null, ['health']),
      cli('admin', ['health', '--json']),
      cli('alice', ['crons', 'ls'], { AGENTCRON_URL: `http://127.0.0.1:${port}` }),
      viaNpm,
      carol,
    ]);
    assert.equal(health.code, 0, health.stderr);
    assert.match(health.stdout, /^ok:\s+true$/m);
    assert.equal(typeof json(healthJson).database.latency_ms, 'number', 'an admin key gets the details');
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`cannot reach the API at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
    assert.equal(npm.code, 0, npm.stderr);
    assert.deepEqual(JSON.parse(npm.stdout), []);
    assert.deepEqual(json(carols), []);
  });
  test('names and short ids stand for a cron id; crons ls fits 120 columns and says when more exist; --json errors are JSON', async () => {
    const long = 'a name long enough to be cut in the narrow table, with more words after it';
    const [named, other] = await Promise.all([
      cli('alice', [
        'crons',
        'create',
        '--assistant',
        'echo',
        '--schedule',
        '0 7 * * *',
        '--paused',
        '--metadata',
        JSON.stringify({ name: 'standup digest', team: 'x'.repeat(200) }),
        '--json',
      ]),
      cli('alice', [
        'crons',
        'create',
        '--assistant',
        'echo',
        '--schedule',
        'CRON_TZ=America/Argentina/Buenos_Aires 0 7 * * *',
        '--paused',
        '--metadata',
        JSON.stringify({ name: long }),
        '--json',
      ]),
    ]);
    const id = json(named).cron_id;
    const [byName, byPrefix, byLongPrefix, paused, missing, bobByName, ledger] = await Promise.all([
      cli('alice', ['crons', 'get', 'standup digest', '--json']),
      cli('alice', ['crons', 'get', id.slice(0, 8), '--json']),
      cli('alice', ['crons', 'next', id.slice(0, 13), '--json']),
      cli('alice', ['crons', 'resume', 'standup digest', '--json']),
      cli('alice', ['crons', 'get', 'no such name']),
      cli('bob', ['crons', 'get', 'standup digest']),
      cli('alice', ['crons', 'occurrences', id.slice(0, 10), '--json']),
    ]);
    assert.equal(json(byName).cron_id, id);
    assert.equal(json(byName).metadata.name, 'standup digest');
    assert.equal(json(byPrefix).cron_id, id);
    assert.equal(json(byLongPrefix).cron_id, id);
    assert.equal(json(paused).enabled, true);
    assert.deepEqual(json(ledger), [], 'created paused and resumed: nothing has fired yet');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^agentcron: HTTP 404: Cron not found: no cron is named "no such name"/);
    assert.equal(bobByName.code, 1, "bob does not find alice's cron by its name");
    const shown = await cli('alice', ['crons', 'get', 'standup digest']);
    assert.match(shown.stdout, /^name:\s+standup digest$/m);

    // The table fits 120 columns however long names and metadata are; --wide shows everything.
    const [table, wide] = await Promise.all([cli('alice', ['crons', 'ls']), cli('alice', ['crons', 'ls', '--wide'])]);
    const widest = Math.max(...table.stdout.split('\n').map((l) => [...l].length));
    assert.ok(widest <= 120, `crons ls is ${widest} columns wide:\n${table.stdout}`);
    assert.match(table.stdout, /\bstandup digest\b/);
    assert.ok(Math.max(...wide.stdout.split('\n').map((l) => [...l].length)) > 120);
    assert.ok(wide.stdout.includes(id));
    assert.doesNotMatch(table.stdout, /showing/);
    // More crons than printed: it says so, and where the next ones start.
    const page = await cli('alice', ['crons', 'ls', '--limit', '1']);
    const total = json(await cli('alice', ['crons', 'ls', '--json', '--limit', '1000'])).length;
    assert.match(page.stdout, new RegExp(`^showing 1-1 of ${total} crons; --offset 1 for the next ones`, 'm'));

    // --json: errors are one JSON object on stderr, with the exit code.
    const [apiError, usage] = await Promise.all([cli('alice', ['crons', 'get', 'no such name', '--json']), cli('alice', ['crons', 'frobnicate', '--json'])]);
    assert.equal(apiError.code, 1);
    assert.deepEqual(JSON.parse(apiError.stderr), {
      detail: 'Cron not found: no cron is named "no such name" (give a name, an id, or 8+ characters of an id)',
      status: 404,
      exit_code: 1,
    });
    assert.equal(usage.code, 2);
    assert.deepEqual(JSON.parse(usage.stderr), { detail: 'unknown command "crons frobnicate"', status: null, exit_code: 2 });
    assert.equal(other.code, 0, other.stderr);
  });

  test('runs ls|get|cancel: runs of every thread and cron, a cron named by its name', async () => {
    const cron = json(
      await cli('alice', ['crons', 'create', '--assistant', 'echo', '--schedule', '0 6 * * *', '--metadata', '{"name":"runs test"}', '--json']),
    );
    const [ls, byCron, pending, table] = await Promise.all([
      cli('alice', ['runs', 'ls', '--json']),
      cli('alice', ['runs', 'ls', '--cron', 'runs test', '--json']),
      cli('alice', ['runs', 'ls', '--status', 'pending,running', '--json']),
      cli('alice', ['runs', 'ls', '--cron', cron.cron_id.slice(0, 8)]),
    ]);
    const first = json(byCron);
    assert.equal(first.length, 1);
    assert.equal(first[0].cron_id, cron.cron_id);
    assert.ok(json(ls).some((r: any) => r.run_id === first[0].run_id));
    assert.ok(json(pending).every((r: any) => ['pending', 'running'].includes(r.status)));
    assert.match(table.stdout, /^RUN_ID\s+STATUS\s+CREATED\s+DURATION\s+CRON\s+ERROR$/m);
    assert.match(table.stdout, new RegExp(`^${first[0].run_id}\\s+pending\\s`, 'm'));
    const [got, bobs] = await Promise.all([cli('alice', ['runs', 'get', first[0].run_id]), cli('bob', ['runs', 'get', first[0].run_id])]);
    assert.match(got.stdout, /^status:\s+pending$/m);
    assert.match(got.stdout, new RegExp(`^cron_id:\\s+${cron.cron_id}$`, 'm'));
    assert.equal(bobs.code, 1);
    assert.match(bobs.stderr, /HTTP 404: Run not found/);
    const cancelled = await cli('alice', ['runs', 'cancel', first[0].run_id]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.match(cancelled.stdout, new RegExp(`^cancelled ${first[0].run_id} \\(interrupted`));
    assert.deepEqual(json(await cli('alice', ['runs', 'ls', '--cron', 'runs test', '--status', 'pending,running', '--json'])), []);
    const bad = await cli('alice', ['runs', 'ls', '--status', 'finished']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /HTTP 422: query\.status: /);
  });
});
