import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client as Client2 } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import { ensureDefaultAssistants } from '../libs/assistants/index.ts';
import { canonicalZoneName, validateTimezone } from '../libs/schedule/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { startTestQueue } from './support/engine.ts';
import { ROOT } from './support/processes.ts';
import { startInProcessApi, teardown } from './support/inprocess.ts';
import type { InProcessApi } from './support/inprocess.ts';

// Everyday use (issue 19) through the HTTP API in this process and both LangGraph SDKs (2.0.0 and
// 1.15.x): time zones the SDKs can pass (a CRON_TZ= prefix), the zone name kept as given.

/** The wall time of an instant in a zone, as "HH:MM". */
const wallTime = (iso: string, zone: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));

describe('everyday use: time zones, names, runs across crons', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let api: InProcessApi;
  let sdk1: InstanceType<typeof Client1>;
  let sdk2: InstanceType<typeof Client2>;

  before(async () => {
    db = await createTestDatabase('everyday');
    boss = await startTestQueue(db.url);
    await ensureDefaultAssistants(db.pool, ['echo']);
    api = await startInProcessApi(db.pool, boss, db.url);
    sdk1 = new Client1({ apiUrl: api.url, apiKey: null, callerOptions: { maxRetries: 0 } });
    sdk2 = new Client2({ apiUrl: api.url, apiKey: null, callerOptions: { maxRetries: 0 } });
  });
  after(() =>
    teardown(
      () => api?.close(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  test('SDK 2 and SDK 1 create a Paris cron that fires at 09:00 Paris (the README example)', async () => {
    // SDK 2 drops `timezone` from crons.create: a zone it passes is the schedule's CRON_TZ= prefix.
    const fromSdk2: any = await sdk2.crons.create('echo', { schedule: 'CRON_TZ=Europe/Paris 0 9 * * 1-5', input: { topic: 'news' } });
    const fromSdk1: any = await sdk1.crons.create('echo', { schedule: 'CRON_TZ=Europe/Paris 0 9 * * 1-5', input: { topic: 'news' } });
    const sdk1Field: any = await sdk1.crons.create('echo', { schedule: '0 9 * * 1-5', timezone: 'Europe/Paris', input: { topic: 'news' } });
    const thread = await sdk2.threads.create();
    const onThread: any = await sdk2.crons.createForThread(thread.thread_id, 'echo', { schedule: 'TZ=Europe/Paris 0 9 * * *' });
    for (const [who, created] of [
      ['sdk 2 prefix', fromSdk2],
      ['sdk 1 prefix', fromSdk1],
      ['sdk 1 timezone', sdk1Field],
      ['sdk 2 thread', onThread],
    ] as const) {
      const cron = (await api.call('GET', `/runs/crons/${created.cron_id}`)).body;
      assert.equal(cron.timezone, 'Europe/Paris', who);
      assert.equal(cron.schedule, who === 'sdk 2 thread' ? '0 9 * * *' : '0 9 * * 1-5', who);
      assert.equal(wallTime(cron.next_run_date, 'Europe/Paris'), '09:00', `${who}: ${cron.next_run_date}`);
      const next = await api.call('GET', `/runs/crons/${cron.cron_id}/next?count=3`);
      for (const t of next.body.next) assert.match(t.local, /T09:00:00\+0[12]:00$/, who);
    }
  });

  test('a CRON_TZ= prefix: stored bare with its zone; a different timezone field, an empty or unknown zone are 422 naming schedule', async () => {
    const same = await api.call('POST', '/runs/crons', {
      assistant_id: 'echo',
      schedule: 'CRON_TZ=Asia/Tokyo 30 8 * * *',
      timezone: 'Asia/Tokyo',
      enabled: false,
    });
    assert.equal(same.status, 200, JSON.stringify(same.body));
    assert.equal(same.body.schedule, '30 8 * * *');
    assert.equal(same.body.timezone, 'Asia/Tokyo');
    for (const [schedule, timezone, pattern] of [
      [
        'CRON_TZ=Europe/Paris 0 9 * * *',
        'America/New_York',
        /^body\.schedule: its prefix names the time zone Europe\/Paris but timezone is "America\/New_York"/,
      ],
      ['CRON_TZ= 0 9 * * *', undefined, /^body\.schedule: CRON_TZ= names no time zone/],
      ['TZ=Mars/Base 0 9 * * *', undefined, /^body\.schedule: the TZ= prefix: invalid timezone "Mars\/Base"/],
      ['CRON_TZ=Europe/Paris', undefined, /^body\.schedule: CRON_TZ=Europe\/Paris is followed by no cron expression/],
    ] as const) {
      const r = await api.call('POST', '/runs/crons', { assistant_id: 'echo', schedule, ...(timezone ? { timezone } : {}) });
      assert.equal(r.status, 422, schedule);
      assert.match(r.body.detail, pattern);
    }
    // PATCH (SDK 2's update sends no timezone either) and preview read the prefix too.
    const patched = await sdk2.crons.update(same.body.cron_id, { schedule: 'CRON_TZ=America/New_York 0 7 * * *' });
    assert.equal((patched as any).schedule, '0 7 * * *');
    assert.equal((patched as any).timezone, 'America/New_York');
    assert.equal(wallTime((patched as any).next_run_date, 'America/New_York'), '07:00');
    const preview = await api.call('POST', '/runs/crons/preview', { schedule: 'TZ=Europe/Paris 0 9 * * *', count: 2 });
    assert.equal(preview.status, 200);
    assert.equal(preview.body.timezone, 'Europe/Paris');
    assert.equal(preview.body.schedule, '0 9 * * *');
  });

  test('a canonical zone name is kept as given (Asia/Kolkata), an alias becomes the canonical name', async () => {
    const cases = [
      ['Asia/Kolkata', 'Asia/Kolkata'],
      ['Asia/Calcutta', 'Asia/Kolkata'],
      ['Europe/Kyiv', 'Europe/Kyiv'],
      ['asia/kolkata', 'Asia/Kolkata'],
      ['US/Eastern', 'America/New_York'],
      ['utc', 'UTC'],
    ] as const;
    for (const [given, stored] of cases) {
      const r = await api.call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 9 * * *', timezone: given, enabled: false });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.timezone, stored, given);
      assert.equal(wallTime(r.body.next_run_date, stored), '09:00', given);
    }
    const prefixed: any = await sdk2.crons.create('echo', { schedule: 'CRON_TZ=Asia/Kolkata 0 9 * * *', enabled: false });
    assert.equal(prefixed.timezone, 'Asia/Kolkata');
    const preview = await api.call('POST', '/runs/crons/preview', { schedule: '0 9 * * *', timezone: 'Asia/Kolkata', count: 1 });
    assert.equal(preview.body.timezone, 'Asia/Kolkata');
  });
  test('names: metadata.name is 1-100 characters and unique per owner (409), also under concurrent creates; PATCH keeps or changes it', async () => {
    const create = (metadata: unknown) => api.call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 9 * * *', enabled: false, metadata });
    const first = await create({ name: 'morning news', team: 'ops' });
    assert.equal(first.status, 200);
    assert.equal(first.body.metadata.name, 'morning news');
    const again = await create({ name: 'morning news' });
    assert.equal(again.status, 409);
    assert.equal(again.body.detail, `body.metadata.name: you already have a cron named "morning news" (${first.body.cron_id}); names are unique per owner`);
    for (const [name, pattern] of [
      ['', /must not be empty/],
      ['   ', /must not be empty/],
      ['x'.repeat(101), /at most 100 characters \(got 101\)/],
      [42, /must be a string/],
    ] as const) {
      const r = await create({ name });
      assert.equal(r.status, 422, String(name));
      assert.match(r.body.detail, /^body\.metadata\.name: /);
      assert.match(r.body.detail, pattern);
    }
    assert.equal((await create({ name: 'é'.repeat(100) })).status, 200);
    // Another owner's cron may bear the name (written straight to the database).
    await db.pool.query(
      `INSERT INTO crons (cron_id, assistant_id, user_id, schedule, enabled, metadata, payload)
       SELECT gen_random_uuid(), assistant_id, 'someone-else', '0 9 * * *', false, '{"name": "shared"}', '{}' FROM crons LIMIT 1`,
    );
    assert.equal((await create({ name: 'shared' })).status, 200);

    // Ten creates of one name at once: exactly one cron gets it.
    const racing = await Promise.all(Array.from({ length: 10 }, () => create({ name: 'racing' })));
    assert.deepEqual(racing.map((r) => r.status).sort(), [200, ...Array(9).fill(409)]);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM crons WHERE user_id = 'anonymous' AND metadata->>'name' = 'racing'`);
    assert.equal(rows[0].n, 1);

    // PATCH: the same name again is fine; another cron's name is a 409; an SDK update renames.
    const other = await create({ name: 'evening news' });
    assert.equal((await api.call('PATCH', `/runs/crons/${other.body.cron_id}`, { metadata: { name: 'evening news', v: 2 } })).status, 200);
    const taken = await api.call('PATCH', `/runs/crons/${other.body.cron_id}`, { metadata: { name: 'morning news' } });
    assert.equal(taken.status, 409);
    assert.match(taken.body.detail, /^body\.metadata\.name: you already have a cron named "morning news"/);
    const renamed: any = await sdk2.crons.update(other.body.cron_id, { metadata: { name: 'late news' } });
    assert.equal(renamed.metadata.name, 'late news');
    // Found by name (metadata filter) and by a short id (cron_id_prefix, 8+ hex digits).
    const byName = await api.call('POST', '/runs/crons/search', { metadata: { name: 'late news' } });
    assert.deepEqual(
      byName.body.map((c: any) => c.cron_id),
      [other.body.cron_id],
    );
    const byPrefix = await api.call('POST', '/runs/crons/search', { cron_id_prefix: other.body.cron_id.slice(0, 8) });
    assert.ok(byPrefix.body.some((c: any) => c.cron_id === other.body.cron_id));
    assert.ok(byPrefix.body.every((c: any) => c.cron_id.startsWith(other.body.cron_id.slice(0, 8))));
    const longPrefix = await api.call('POST', '/runs/crons/search', { cron_id_prefix: other.body.cron_id.slice(0, 13) });
    assert.deepEqual(
      longPrefix.body.map((c: any) => c.cron_id),
      [other.body.cron_id],
    );
    const short = await api.call('POST', '/runs/crons/search', { cron_id_prefix: 'abc' });
    assert.equal(short.status, 422);
    assert.match(short.body.detail, /^body\.cron_id_prefix: must be 8 or more hex digits/);
  });
  test(
    'GET /runs: runs across threads and crons, stateless ones included, owner-scoped (admin sees all), filtered, newest first, paged; bad ' +
      'filters are 422s',
    async () => {
      const keys = await startInProcessApi(db.pool, boss, db.url, undefined, { AUTH_MODE: 'api_key', AUTH_API_KEYS: 'ak:alice,bk:bob', ADMIN_API_KEYS: 'adm' });
      try {
        const as = (key: string, path: string) => keys.call('GET', path, undefined, key);
        const stateless = await keys.call('POST', '/runs', { assistant_id: 'echo', input: { n: 1 } }, 'ak');
        assert.equal(stateless.status, 200);
        const cronRun = await keys.call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '0 9 * * *', metadata: { name: 'daily' } }, 'ak');
        assert.equal(cronRun.status, 200);
        const thread = await keys.call('POST', '/threads', {}, 'ak');
        const threadRun = await keys.call('POST', `/threads/${thread.body.thread_id}/runs`, { assistant_id: 'echo', input: {} }, 'ak');
        const bobs = await keys.call('POST', '/runs', { assistant_id: 'echo', input: {} }, 'bk');
        // A stateless run is running, the thread run failed (as a worker would leave them).
        await db.pool.query(`UPDATE runs SET status = 'running', started_at = now() WHERE run_id = $1`, [stateless.body.run_id]);
        await db.pool.query(
          `UPDATE runs SET status = 'error', started_at = now(), ended_at = now(), error = '{"error": "Boom", "message": "it broke"}', output = NULL
            WHERE run_id = $1`,
          [threadRun.body.run_id],
        );

        const mine = await as('ak', '/runs');
        assert.equal(mine.status, 200);
        const ids = mine.body.map((r: any) => r.run_id);
        assert.deepEqual(ids, [threadRun.body.run_id, cronRun.body.run_id, stateless.body.run_id], "newest first, only alice's");
        // The same shaping as the other run routes (plus the owner).
        const direct = await as('ak', `/threads/${thread.body.thread_id}/runs/${threadRun.body.run_id}`);
        assert.deepEqual(mine.body[0], { ...direct.body, user_id: 'alice' });

        const running = await as('ak', '/runs?status=running,pending');
        assert.deepEqual(
          running.body.map((r: any) => [r.run_id, r.status]),
          [
            [cronRun.body.run_id, 'pending'],
            [stateless.body.run_id, 'running'],
          ],
        );
        assert.deepEqual(
          (await as('ak', '/runs?status=error')).body.map((r: any) => r.error),
          [{ error: 'Boom', message: 'it broke' }],
        );
        assert.deepEqual(
          (await as('ak', `/runs?cron_id=${cronRun.body.cron_id}`)).body.map((r: any) => r.run_id),
          [cronRun.body.run_id],
        );
        assert.deepEqual(
          (await as('ak', `/runs?thread_id=${thread.body.thread_id}`)).body.map((r: any) => r.run_id),
          [threadRun.body.run_id],
        );
        assert.equal((await as('ak', '/runs?assistant_id=echo')).body.length, 3);
        assert.equal((await as('ak', `/runs?assistant_id=${randomUUID()}`)).body.length, 0);
        const page = await as('ak', '/runs?limit=1&offset=1');
        assert.deepEqual(
          page.body.map((r: any) => r.run_id),
          [cronRun.body.run_id],
        );
        const created = new Date(mine.body[1].created_at).getTime();
        const range = await as('ak', `/runs?created_after=${new Date(created).toISOString()}&created_before=${new Date(created + 1).toISOString()}`);
        assert.deepEqual(
          range.body.map((r: any) => r.run_id),
          [cronRun.body.run_id],
        );

        // Admin: everyone's, or one owner's.
        const all = await as('adm', '/runs');
        assert.ok(all.body.some((r: any) => r.run_id === bobs.body.run_id && r.user_id === 'bob'));
        assert.ok(all.body.some((r: any) => r.run_id === stateless.body.run_id && r.user_id === 'alice'));
        assert.deepEqual(
          (await as('adm', '/runs?user_id=bob')).body.map((r: any) => r.run_id),
          [bobs.body.run_id],
        );

        for (const [query, field] of [
          ['status=finished', 'query.status: expected one or more of pending, running'],
          ['cron_id=nope', 'query.cron_id: must be a UUID'],
          ['thread_id=1', 'query.thread_id: must be a UUID'],
          ['created_after=yesterday', 'query.created_after: expected an ISO 8601'],
          ['limit=0', 'query.limit'],
          ['offset=-1', 'query.offset'],
          ['user_id=bob', "query.user_id: only an admin key lists another owner's runs"],
          ['created_after=2030-01-02T00:00:00Z&created_before=2030-01-01T00:00:00Z', 'query.created_before: must be after created_after'],
        ] as const) {
          const r = await as('ak', `/runs?${query}`);
          assert.equal(r.status, 422, query);
          assert.ok(r.body.detail.startsWith(field), `${query}: ${r.body.detail}`);
        }

        // One run by its id alone, with its output; someone else's is not found.
        const one = await as('ak', `/runs/${threadRun.body.run_id}`);
        assert.equal(one.status, 200);
        assert.equal(one.body.status, 'error');
        assert.equal(one.body.output, null);
        assert.equal((await as('ak', `/runs/${bobs.body.run_id}`)).status, 404);
        assert.equal((await as('adm', `/runs/${bobs.body.run_id}`)).status, 200);
        assert.equal((await as('ak', '/runs/crons')).status, 405);
      } finally {
        await keys.close();
      }
    },
  );
  test("backfill's overlap choice: the cron's rule (skip fires one now) or allow (every occurrence); allow is for stateless crons only", async () => {
    const cron = await api.call('POST', '/runs/crons', { assistant_id: 'echo', schedule: '*/5 * * * *', overlap_policy: 'skip', enabled: false });
    const day = new Date(Date.now() - 2 * 86400_000).toISOString().slice(0, 10);
    const range = (from: string, to: string) => ({ from: `${day}T${from}:00Z`, to: `${day}T${to}:00Z` });
    const ruled = await api.call('POST', `/runs/crons/${cron.body.cron_id}/backfill`, range('10:00', '10:20'));
    assert.deepEqual([ruled.body.occurrences, ruled.body.fired, ruled.body.skipped_overlap], [5, 1, 4]);
    const all = await api.call('POST', `/runs/crons/${cron.body.cron_id}/backfill`, { ...range('10:00', '10:20'), overlap: 'allow' });
    assert.deepEqual([all.body.occurrences, all.body.fired, all.body.skipped_existing, all.body.skipped_overlap], [5, 4, 1, 0]);
    const thread = await sdk2.threads.create();
    const onThread: any = await sdk2.crons.createForThread(thread.thread_id, 'echo', { schedule: '*/5 * * * *', enabled: false });
    const refused = await api.call('POST', `/runs/crons/${onThread.cron_id}/backfill`, { ...range('10:00', '10:20'), overlap: 'allow' });
    assert.equal(refused.status, 422);
    assert.match(refused.body.detail, /^body\.overlap: "allow" applies to stateless crons/);
    const bad = await api.call('POST', `/runs/crons/${cron.body.cron_id}/backfill`, { ...range('10:00', '10:20'), overlap: 'sometimes' });
    assert.equal(bad.status, 422);
    assert.match(bad.body.detail, /^body\.overlap: /);
  });
  test("the README's SDK example, run as the paris.mjs it describes with SDK 2 and SDK 1, prints a Paris 09:00 cron", async () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /save this as `paris\.mjs`[\s\S]*?```js\n([\s\S]*?)```/.exec(readme);
    assert.ok(block, 'the README has the paris.mjs example');
    const dir = path.join(ROOT, '.agentcron');
    mkdirSync(dir, { recursive: true });
    for (const sdk of ['@langchain/langgraph-sdk', 'sdk1']) {
      const file = path.join(dir, `paris-${randomUUID()}.mjs`);
      writeFileSync(file, block[1].replaceAll('http://localhost:8000', api.url).replace("from '@langchain/langgraph-sdk'", `from '${sdk}'`));
      try {
        const out = await new Promise<string>((resolve, reject) =>
          execFile(process.execPath, [file], { timeout: 20_000 }, (err, stdout, stderr) =>
            err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
          ),
        );
        assert.match(out.trim(), /^0 9 \* \* 1-5 Europe\/Paris \d{4}-\d\d-\d\dT0[78]:00:00\.000Z$/, sdk);
        assert.equal(wallTime(out.trim().split(' ').at(-1)!, 'Europe/Paris'), '09:00', `${sdk}: ${out}`);
      } finally {
        rmSync(file, { force: true });
      }
    }
  });
  test('every zone ICU still calls by a former name is stored by its current one, which the runtime accepts', () => {
    const renamed = [
      'Asia/Kolkata',
      'Europe/Kyiv',
      'Asia/Ho_Chi_Minh',
      'Asia/Kathmandu',
      'Asia/Yangon',
      'America/Nuuk',
      'Pacific/Kanton',
      'America/Argentina/Buenos_Aires',
      'Atlantic/Faroe',
      'Pacific/Chuuk',
      'Pacific/Pohnpei',
      'Africa/Asmara',
      'America/Indiana/Indianapolis',
      'America/Kentucky/Louisville',
      'America/Atikokan',
    ];
    for (const zone of renamed) {
      assert.equal(canonicalZoneName(zone), zone, zone);
      assert.equal(validateTimezone(zone), zone);
    }
    // Every zone the runtime lists comes back as a name the runtime accepts, and stays put when stored again.
    for (const zone of Intl.supportedValuesOf('timeZone')) {
      const stored = canonicalZoneName(zone);
      assert.equal(validateTimezone(stored), stored);
      assert.equal(canonicalZoneName(stored), stored, `${zone} -> ${stored}`);
    }
  });
});
