import { test } from 'node:test';
import { createTestDatabase } from '/work/main/test/support/db.ts';
import { freePort, spawnApp } from '/work/main/test/support/processes.ts';
import { post, startProvider, writeConfig } from '/work/main/test/support/provider.ts';
test('dbg', async () => {
  const provider = await startProvider({ maxConcurrent: 100, failFirst: false, delayMs: 50 });
  const config = writeConfig({ limits: { paced: { rate: { runs: 10, per_seconds: 2 } } }, graphs: { paced: { url: provider.url, limits: ['paced'] } } });
  const db = await createTestDatabase('dbg');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { DATABASE_URL: db.url, PORT: String(port), HOST: '127.0.0.1', AGENTCRON_CONFIG: config.file, LOG_LEVEL: 'debug' };
  const api = spawnApp('api', env); const w = spawnApp('worker', env);
  await api.waitFor(/api listening on/); await w.waitFor(/worker started/);
  const crons = [];
  for (let i = 0; i < 50; i++) crons.push(await post(`${url}/runs/crons`, { assistant_id: 'paced', schedule: '0 0 1 1 *', input: {}, enabled: false }));
  await Promise.all(crons.map((c) => post(`${url}/runs/crons/${c.cron_id}/trigger`, {})));
  for (let i = 0; i < 12; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const { rows } = await db.pool.query(`SELECT r.status, r.waiting, count(*)::int, min(j.start_after - now()) AS soonest, max(j.start_after - now()) AS latest, string_agg(DISTINCT j.state, ',') AS states FROM runs r LEFT JOIN pgboss.job j ON j.id = r.run_id GROUP BY 1, 2`);
    console.log(i, JSON.stringify(rows), provider.calls.length);
  }
  console.log(w.output.filter((l) => /warn|error/i.test(l)).slice(-10).join('\n'));
  api.kill(); w.kill(); await api.exited; await w.exited; await db.drop(); await provider.close();
});
