import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client as Client2 } from '@langchain/langgraph-sdk';
import { Client as Client1 } from 'sdk1';
import { defaultAssistantId, ensureDefaultAssistants } from '../libs/assistants/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { startTestQueue } from './support/engine.ts';
import { startInProcessApi, teardown } from './support/inprocess.ts';
import type { InProcessApi } from './support/inprocess.ts';

// Issue 12, tenancy: default assistant ids nobody can capture; /health's details for admin keys
// only; admin keys see and manage every user's crons and move crons (with their threads) from
// one user to another, e.g. the implicit user's crons after AUTH_MODE=api_key is switched on;
// bulk disable/enable/delete for owners and admins. Two apps run in this process on one
// database: AUTH_MODE=none (the implicit user "anonymous") and AUTH_MODE=api_key (alice, bob,
// an admin key). No worker: runs stay pending.

const KEYS = { alice: 'alice-key', bob: 'bob-key', admin: 'admin-key' } as const;
type Who = keyof typeof KEYS | 'none' | 'anonymous';

interface Answer {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

describe('issue 12: tenancy, admin keys and bulk operations', () => {
  let db: TestDatabase;
  let boss: PgBoss;
  let open: InProcessApi;
  let keyed: InProcessApi;

  before(async () => {
    db = await createTestDatabase('api_tenancy');
    boss = await startTestQueue(db.url);
    await ensureDefaultAssistants(db.pool, ['echo']);
    open = await startInProcessApi(db.pool, boss, db.url);
    keyed = await startInProcessApi(db.pool, boss, db.url, undefined, {
      AUTH_MODE: 'api_key',
      AUTH_API_KEYS: `${KEYS.alice}:alice,${KEYS.bob}:bob`,
      ADMIN_API_KEYS: KEYS.admin,
    });
  });
  after(() =>
    teardown(
      () => open?.close(),
      () => keyed?.close(),
      () => boss?.stop({ graceful: false }),
      () => db?.drop(),
    ),
  );

  /** A request as someone: "anonymous" through the AUTH_MODE=none app, "none" without a key. */
  async function call(who: Who, method: string, path: string, body?: unknown): Promise<Answer> {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    if (who !== 'none' && who !== 'anonymous') headers['x-api-key'] = KEYS[who];
    const base = who === 'anonymous' ? open.url : keyed.url;
    const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers, text };
  }
  const ok = async (who: Who, method: string, path: string, body?: unknown): Promise<any> => {
    const res = await call(who, method, path, body);
    assert.ok(res.status >= 200 && res.status < 300, `${who} ${method} ${path}: ${res.status} ${res.text}`);
    return res.body;
  };
  const sdk2 = (who: keyof typeof KEYS) => new Client2({ apiUrl: keyed.url, apiKey: KEYS[who], callerOptions: { maxRetries: 0 } });
  const sdk1 = (who: keyof typeof KEYS) => new Client1({ apiUrl: keyed.url, apiKey: KEYS[who], callerOptions: { maxRetries: 0 } });
  const ledgerRows = async (cronIds: string[]) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM cron_occurrences WHERE cron_id = ANY($1::uuid[])`, [cronIds])).rows[0].n as number;

  test('3. a default assistant id cannot be captured: reserved at create; a captured one is taken back when the graph is added', async () => {
    const digest = defaultAssistantId('digest');
    // The exact sequence: before the operator adds a "digest" graph, users try to take its id.
    await assert.rejects(sdk2('alice').assistants.create({ graphId: 'echo', assistantId: digest }), (e: any) => e.status === 422 && /reserved/.test(e.message));
    await assert.rejects(sdk1('bob').assistants.create({ graphId: 'echo', assistantId: digest }), (e: any) => e.status === 422);
    const raw = await call('alice', 'POST', '/assistants', { graph_id: 'echo', assistant_id: digest.toUpperCase() });
    assert.equal(raw.status, 422);
    assert.match(raw.body.detail, /^body\.assistant_id: .*version-5 UUID, reserved for graphs' default assistants/);
    // An existing default named with if_exists do_nothing is answered, as before.
    const echoDefault = await sdk1('alice').assistants.create({ graphId: 'echo', assistantId: defaultAssistantId('echo'), ifExists: 'do_nothing' });
    assert.equal(echoDefault.assistant_id, defaultAssistantId('echo'));
    // Any other id is fine.
    assert.ok((await sdk2('alice').assistants.create({ graphId: 'echo', assistantId: randomUUID() })).assistant_id);

    // The operator adds the graph: everyone gets its default.
    assert.deepEqual(await ensureDefaultAssistants(db.pool, ['echo', 'digest']), []);
    for (const client of [sdk1('bob'), sdk2('alice')]) {
      const found = await client.assistants.get('digest');
      assert.equal(found.assistant_id, digest);
      assert.equal(found.graph_id, 'digest');
    }
    const cron: any = await sdk2('bob').crons.create('digest', { schedule: '@daily', enabled: false });
    assert.equal(cron.assistant_id, digest);

    // A capture stored before ids were reserved: the default takes its id back when its graph
    // is added, and the user's assistant (with its cron and the threads that name it) moves.
    const legacy = defaultAssistantId('legacy');
    await db.pool.query(`INSERT INTO assistants (assistant_id, graph_id, name, user_id) VALUES ($1, 'echo', 'alice''s own', 'alice')`, [legacy]);
    const aliceCron = await ok('alice', 'POST', '/runs/crons', { assistant_id: legacy, schedule: '@daily', metadata: { legacy: true } });
    const aliceThread = await ok('alice', 'POST', '/threads', { metadata: { assistant_id: legacy } });
    assert.equal((await call('bob', 'GET', '/assistants/legacy')).status, 404, 'captured: bob is locked out of the graph');
    const moved = await ensureDefaultAssistants(db.pool, ['echo', 'digest', 'legacy']);
    assert.equal(moved.length, 1);
    assert.deepEqual({ ...moved[0], to: undefined }, { graph_id: 'echo', user_id: 'alice', from: legacy, to: undefined });
    const bobs = await ok('bob', 'GET', '/assistants/legacy');
    assert.equal(bobs.assistant_id, legacy);
    assert.equal(bobs.graph_id, 'legacy');
    const mine = await ok('alice', 'GET', `/assistants/${moved[0].to}`);
    assert.equal(mine.name, "alice's own");
    assert.equal((await ok('alice', 'GET', `/runs/crons/${aliceCron.cron_id}`)).assistant_id, moved[0].to);
    assert.equal((await ok('alice', 'GET', `/threads/${aliceThread.thread_id}`)).metadata.assistant_id, moved[0].to);
    const run = await db.pool.query(`SELECT assistant_id FROM runs WHERE run_id = $1`, [aliceCron.run_id]);
    assert.equal(run.rows[0].assistant_id, moved[0].to, 'its runs follow');
    assert.deepEqual(await ensureDefaultAssistants(db.pool, ['echo', 'digest', 'legacy']), [], 'idempotent');
  });

  test('4. /health without an admin key answers the status only; admin keys get the details', async () => {
    await db.pool.query(
      `INSERT INTO agentcron_processes (process_id, role, hostname, pid, started_at, last_seen_at) VALUES ($1, 'worker', 'secret-host', 4242, now(), now())`,
      [randomUUID()],
    );
    for (const who of ['none', 'alice'] as const) {
      const res = await call(who, 'GET', '/health');
      assert.equal(res.status, 200, res.text);
      // The status and its reasons (sentences about the whole deployment) are for everyone.
      assert.deepEqual(Object.keys(res.body).sort(), ['database', 'details', 'ok', 'queue', 'reasons', 'schedulers', 'status']);
      assert.ok(['ok', 'degraded'].includes(res.body.status), res.text);
      assert.deepEqual(Object.keys(res.body.database), ['ok']);
      assert.deepEqual(Object.keys(res.body.schedulers), ['ticking']);
      assert.ok(!res.text.includes('secret-host') && !/"monitor"|"workers"|latency/.test(res.text), res.text);
    }
    for (const who of ['admin', 'anonymous'] as const) {
      const res = await call(who, 'GET', '/health');
      assert.equal(res.status, 200);
      assert.equal(res.body.workers.alive, 1, `${who}: details`);
      assert.ok('monitor' in res.body && typeof res.body.database.latency_ms === 'number');
    }
    // A wrong key is no admin either (and /health stays public).
    const wrong = await fetch(`${keyed.url}/health`, { headers: { 'x-api-key': 'nope' } });
    assert.equal(wrong.status, 200);
    assert.equal(((await wrong.json()) as any).workers, undefined);
  });

  test('5. crons of AUTH_MODE=none: stranded for user keys, managed by admin keys (user_id says whose), adopted with /admin/crons/transfer', async () => {
    const tag = { adopt: randomUUID() };
    // Made while AUTH_MODE=none: the implicit user owns them.
    const stateless = await ok('anonymous', 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', on_run_completed: 'keep', metadata: tag });
    const thread = await ok('anonymous', 'POST', '/threads', {});
    const onThread = await ok('anonymous', 'POST', `/threads/${thread.thread_id}/runs/crons`, { assistant_id: 'echo', schedule: '@hourly', metadata: tag });
    const second = await ok('anonymous', 'POST', `/threads/${thread.thread_id}/runs/crons`, { assistant_id: 'echo', schedule: '@weekly', enabled: false });
    const own = await ok('anonymous', 'POST', '/assistants', { graph_id: 'echo', name: 'anon assistant' });
    const withOwn = await ok('anonymous', 'POST', '/runs/crons', { assistant_id: own.assistant_id, schedule: '@daily', enabled: false, metadata: tag });
    const alices = await ok('alice', 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', enabled: false, metadata: tag });

    // After the switch to api_key, no user key reaches them.
    assert.equal(await sdk1('alice').crons.count({ metadata: tag }), 1);
    assert.equal((await sdk2('alice').crons.search({ limit: 1000 })).filter((c) => c.cron_id === onThread.cron_id).length, 0);
    assert.equal((await call('alice', 'GET', `/runs/crons/${onThread.cron_id}`)).status, 404);
    assert.equal((await call('bob', 'DELETE', `/runs/crons/${onThread.cron_id}`)).status, 404);
    assert.equal((await call('alice', 'POST', '/admin/crons/search', {})).status, 403);
    assert.equal((await call('alice', 'POST', '/admin/crons/transfer', { from_user_id: 'anonymous', to_user_id: 'alice' })).status, 403);

    // Admin keys see every user's, saying whose each is.
    const all = await ok('admin', 'POST', '/admin/crons/search', { metadata: tag, sort_by: 'user_id', sort_order: 'asc', limit: 100 });
    assert.deepEqual(
      all.map((c: any) => c.user_id),
      ['alice', 'anonymous', 'anonymous', 'anonymous'],
    );
    const anon = await ok('admin', 'POST', '/admin/crons/search', { user_id: 'anonymous', select: ['cron_id', 'user_id'], limit: 100 });
    assert.ok(anon.every((c: any) => c.user_id === 'anonymous' && Object.keys(c).length === 2));
    assert.equal(anon.length, 4);
    assert.equal(await ok('admin', 'POST', '/admin/crons/count', { metadata: tag }), 4);
    assert.equal(await ok('admin', 'POST', '/admin/crons/count', { metadata: tag, user_id: 'alice' }), 1);
    const got = await ok('admin', 'GET', `/admin/crons/${onThread.cron_id}`);
    assert.equal(got.user_id, 'anonymous');
    const patched = await ok('admin', 'PATCH', `/admin/crons/${onThread.cron_id}`, { enabled: false, metadata: { ...tag, by: 'admin' } });
    assert.equal(patched.enabled, false);
    assert.equal(patched.user_id, 'anonymous', 'still the owner');
    const run = await ok('admin', 'POST', `/admin/crons/${stateless.cron_id}/trigger`);
    assert.equal(run.cron_id, stateless.cron_id);
    assert.equal((await call('admin', 'GET', `/admin/crons/${randomUUID()}`)).status, 404);
    // An admin key on the regular API acts as its own user, "admin".
    assert.equal((await call('admin', 'GET', `/runs/crons/${onThread.cron_id}`)).status, 404);

    // Move some: one cron on the thread takes the thread, its other cron and its runs along.
    const some = await ok('admin', 'POST', '/admin/crons/transfer', {
      from_user_id: 'anonymous',
      to_user_id: 'alice',
      cron_ids: [onThread.cron_id, withOwn.cron_id],
    });
    assert.deepEqual(some.cron_ids.sort(), [onThread.cron_id, second.cron_id, withOwn.cron_id].sort());
    assert.equal(some.count, 3);
    assert.equal(some.threads, 1);
    assert.ok(some.runs >= 1);
    assert.deepEqual(some.assistants_kept, [own.assistant_id], "the old owner's assistant stays unless asked");
    assert.equal((await ok('alice', 'GET', `/runs/crons/${second.cron_id}`)).user_id, 'alice');
    assert.equal((await ok('alice', 'GET', `/threads/${thread.thread_id}`)).thread_id, thread.thread_id);
    assert.ok((await ok('alice', 'GET', `/threads/${thread.thread_id}/runs`)).length >= 1, 'its runs moved with it');
    assert.equal((await call('anonymous', 'GET', `/threads/${thread.thread_id}`)).status, 404);
    // Alice's cron on the old owner's assistant still runs it: triggers as hers.
    assert.equal((await ok('alice', 'POST', `/runs/crons/${withOwn.cron_id}/trigger`)).assistant_id, own.assistant_id);

    // Adopt the rest, assistants included.
    const rest = await ok('admin', 'POST', '/admin/crons/transfer', { from_user_id: 'anonymous', to_user_id: 'alice', assistants: true });
    assert.ok(rest.cron_ids.includes(stateless.cron_id));
    assert.ok(rest.threads >= 1, "the stateless cron's kept threads");
    assert.equal(await ok('anonymous', 'POST', '/runs/crons/count', {}), 0);
    assert.equal(await sdk1('alice').crons.count({ metadata: tag }), 4, 'her own, and the three adopted with the tag');
    assert.ok((await ok('alice', 'GET', `/threads/${stateless.thread_id}`)).thread_id);
    await sdk2('alice').crons.delete(stateless.cron_id);
    assert.equal((await call('admin', 'DELETE', `/admin/crons/${alices.cron_id}`)).status, 204);
    assert.equal((await call('alice', 'GET', `/runs/crons/${alices.cron_id}`)).status, 404);

    for (const [body, detail] of [
      [{ from_user_id: 'alice', to_user_id: 'alice' }, /^body\.to_user_id: must differ/],
      [{ from_user_id: 'alice' }, /^body\.to_user_id: required$/],
      [{ from_user_id: 'alice', to_user_id: 'bob', cron_ids: ['x'] }, /^body\.cron_ids\.0: must be a UUID$/],
    ] as const) {
      const res = await call('admin', 'POST', '/admin/crons/transfer', body);
      assert.equal(res.status, 422);
      assert.match(res.body.detail, detail);
    }
    const nothing = await ok('admin', 'POST', '/admin/crons/transfer', { from_user_id: 'nobody', to_user_id: 'alice' });
    assert.equal(nothing.count, 0);
  });

  test("6. bulk disable, enable and delete for owners (their own crons only) and admins (anyone's), answering the count", async () => {
    const tag = { bulk: randomUUID() };
    const mine = [];
    for (let i = 0; i < 4; i++) mine.push(await ok('alice', 'POST', '/runs/crons', { assistant_id: 'echo', schedule: `${i} 3 * * *`, metadata: tag }));
    const bobs = [];
    for (let i = 0; i < 2; i++) bobs.push(await ok('bob', 'POST', '/runs/crons', { assistant_id: 'echo', schedule: `${i} 4 * * *`, metadata: tag }));
    const ids = mine.map((c) => c.cron_id);
    assert.equal(await ledgerRows(ids), 4, 'each first run has its ledger row');

    assert.deepEqual(await ok('alice', 'POST', '/runs/crons/bulk', { action: 'disable', metadata: tag }), { action: 'disable', count: 4 });
    const enabledCount = (who: 'alice' | 'bob') => ok(who, 'POST', '/runs/crons/count', { metadata: tag, enabled: true });
    assert.equal(await enabledCount('alice'), 0);
    assert.equal(await enabledCount('bob'), 2, "bob's are untouched");

    // Enabling follows PATCH: a passed next_run_date restarts from now.
    await db.pool.query(`UPDATE crons SET next_run_date = now() - interval '2 days' WHERE cron_id = $1`, [ids[0]]);
    assert.deepEqual(await ok('alice', 'POST', '/runs/crons/bulk', { action: 'enable', assistant_id: 'echo', metadata: tag, enabled: false }), {
      action: 'enable',
      count: 4,
    });
    const enabled = await ok('alice', 'GET', `/runs/crons/${ids[0]}`);
    assert.equal(enabled.enabled, true);
    assert.ok(new Date(enabled.next_run_date).getTime() > Date.now() - 1000, enabled.next_run_date);

    // Refused without a filter, unless all: true; a bad action names itself.
    for (const [body, detail] of [
      [{ action: 'delete' }, /^body: name the crons with a filter .* or send "all": true$/],
      [{ action: 'archive', metadata: tag }, /^body\.action: expected "disable", "enable" or "delete"$/],
      [{ metadata: tag }, /^body\.action: required$/],
    ] as const) {
      const res = await call('alice', 'POST', '/runs/crons/bulk', body);
      assert.equal(res.status, 422, res.text);
      assert.match(res.body.detail, detail);
    }
    const get = await call('alice', 'GET', '/runs/crons/bulk');
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');

    // Concurrent bulk operations, updates and triggers on the same crons: no 5xx (deadlocks retried).
    const racing = await Promise.all([
      call('alice', 'POST', '/runs/crons/bulk', { action: 'disable', metadata: tag }),
      call('alice', 'POST', '/runs/crons/bulk', { action: 'enable', metadata: tag }),
      call('admin', 'POST', '/admin/crons/bulk', { action: 'disable', metadata: tag }),
      ...ids.map((id) => call('alice', 'PATCH', `/runs/crons/${id}`, { schedule: '5 5 * * *' })),
      ...ids.map((id) => call('alice', 'POST', `/runs/crons/${id}/trigger`)),
      call('admin', 'POST', '/admin/crons/bulk', { action: 'enable', user_id: 'alice' }),
    ]);
    for (const r of racing) assert.ok(r.status < 500, `${r.status} ${r.text}`);

    // Admins: across users, or one user's.
    assert.deepEqual(await ok('admin', 'POST', '/admin/crons/bulk', { action: 'disable', metadata: tag }), { action: 'disable', count: 6 });
    assert.deepEqual(await ok('admin', 'POST', '/admin/crons/bulk', { action: 'enable', metadata: tag, user_id: 'bob' }), { action: 'enable', count: 2 });
    assert.equal(await enabledCount('bob'), 2);
    assert.equal((await call('admin', 'POST', '/admin/crons/bulk', { action: 'delete' })).status, 422);
    assert.equal((await call('bob', 'POST', '/admin/crons/bulk', { action: 'delete', all: true })).status, 403);

    // Delete: the crons and their ledger rows, as DELETE /runs/crons/{id} does.
    assert.ok((await ledgerRows(ids)) >= 4);
    assert.deepEqual(await ok('alice', 'POST', '/runs/crons/bulk', { action: 'delete', metadata: tag }), { action: 'delete', count: 4 });
    assert.equal(await ledgerRows(ids), 0);
    assert.equal((await call('alice', 'GET', `/runs/crons/${ids[0]}`)).status, 404);
    assert.equal(await sdk1('bob').crons.count({ metadata: tag }), 2);
    assert.deepEqual(await ok('admin', 'POST', '/admin/crons/bulk', { action: 'delete', user_id: 'bob', metadata: tag }), { action: 'delete', count: 2 });
    assert.equal(await ledgerRows(bobs.map((c) => c.cron_id)), 0);

    // all: true is every cron of the caller.
    await ok('bob', 'POST', '/runs/crons', { assistant_id: 'echo', schedule: '@daily', enabled: false });
    const before = await ok('bob', 'POST', '/runs/crons/count', {});
    assert.deepEqual(await ok('bob', 'POST', '/runs/crons/bulk', { action: 'delete', all: true }), { action: 'delete', count: before });
    assert.equal(await ok('bob', 'POST', '/runs/crons/count', {}), 0);
  });
});
