import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, connectionBudget, loadConfig } from '../libs/config/index.ts';
import { MAINTENANCE_CATALOG, settingKey } from '../libs/config/maintenance-catalog.ts';
import { parseSchedule, validateTimezone } from '../libs/schedule/index.ts';
import { spawnApp } from './support/processes.ts';

describe('configuration', () => {
  // The config checks a maintenance schedule or time zone that is set; the defaults are taken as
  // valid without being parsed at each start: these pin that they are.
  test('every default maintenance schedule, and the default time zone, are valid', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://a@b/c' });
    assert.equal(validateTimezone(config.MAINTENANCE_TIMEZONE), 'UTC');
    for (const job of MAINTENANCE_CATALOG) {
      const schedule = config[`MAINTENANCE_${settingKey(job.name)}_SCHEDULE`];
      assert.equal(schedule, job.schedule);
      assert.ok(parseSchedule(schedule, { allowSeconds: true, timezone: 'UTC' }), job.name);
    }
  });

  test('a maintenance schedule or time zone that is set is still checked', () => {
    assert.throws(() => loadConfig({ DATABASE_URL: 'postgres://a@b/c', MAINTENANCE_DAILY_STATS_SCHEDULE: '61 * * * *' }), /MAINTENANCE_DAILY_STATS_SCHEDULE/);
    assert.throws(() => loadConfig({ DATABASE_URL: 'postgres://a@b/c', MAINTENANCE_TIMEZONE: 'Mars/Olympus' }), /MAINTENANCE_TIMEZONE/);
    assert.equal(loadConfig({ DATABASE_URL: 'postgres://a@b/c', MAINTENANCE_TIMEZONE: 'Europe/Paris' }).MAINTENANCE_TIMEZONE, 'Europe/Paris');
  });

  test('defaults apply when nothing is set', () => {
    const c = loadConfig({});
    assert.equal(c.PORT, 8000);
    assert.equal(c.SHUTDOWN_GRACE_SECONDS, 25);
    assert.equal(c.CRON_ALLOW_SECONDS_SCHEDULE, false);
    assert.equal(c.CRON_MAX_PER_USER, 100);
    assert.equal(c.DATABASE_URL, undefined);
  });

  test('the connection budget: role defaults, DATABASE_MAX_CONNECTIONS split into LISTEN + pool, the older DATABASE_POOL_MAX, too small named', () => {
    const roles = (r: string) => ({ api: r.includes('api'), scheduler: r.includes('scheduler'), worker: r.includes('worker') });
    const budget = (env: Record<string, string>, r: string) => connectionBudget(loadConfig(env), roles(r));
    assert.deepEqual(budget({}, 'api'), { total: 5, listeners: 0, pool: 5, source: 'default' });
    assert.deepEqual(budget({}, 'scheduler'), { total: 3, listeners: 1, pool: 2, source: 'default' });
    assert.deepEqual(budget({}, 'worker'), { total: 4, listeners: 1, pool: 3, source: 'default' });
    assert.deepEqual(budget({}, 'api scheduler worker'), { total: 12, listeners: 2, pool: 10, source: 'default' });
    assert.deepEqual(budget({ CRON_ENABLED: 'false' }, 'scheduler'), { total: 3, listeners: 0, pool: 3, source: 'default' });
    assert.deepEqual(budget({ DATABASE_MAX_CONNECTIONS: '10' }, 'worker'), { total: 10, listeners: 1, pool: 9, source: 'DATABASE_MAX_CONNECTIONS' });
    assert.deepEqual(budget({ DATABASE_POOL_MAX: '10' }, 'worker'), { total: 11, listeners: 1, pool: 10, source: 'DATABASE_POOL_MAX' });
    assert.deepEqual(budget({ DATABASE_POOL_MAX: '10', DATABASE_MAX_CONNECTIONS: '6' }, 'worker').total, 6);
    assert.throws(
      () => budget({ DATABASE_MAX_CONNECTIONS: '2' }, 'scheduler'),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.variable === 'DATABASE_MAX_CONNECTIONS' &&
        /must be at least 3 for this process \(scheduler: 1 LISTEN connection \+ a pool of 2\)/.test(err.message),
    );
    assert.throws(
      () => budget({ DATABASE_POOL_MAX: '1' }, 'worker'),
      (err: unknown) => err instanceof ConfigError && err.variable === 'DATABASE_POOL_MAX',
    );
    assert.equal(budget({ DATABASE_MAX_CONNECTIONS: '1' }, 'api').pool, 1);
  });

  test('values are parsed and typed', () => {
    const c = loadConfig({ PORT: '3000', CRON_ALLOW_SECONDS_SCHEDULE: 'true', DATABASE_URL: 'postgres://u@h:5432/db' });
    assert.equal(c.PORT, 3000);
    assert.equal(c.CRON_ALLOW_SECONDS_SCHEDULE, true);
    assert.equal(c.DATABASE_URL, 'postgres://u@h:5432/db');
  });

  for (const [variable, value, rule] of [
    ['PORT', 'abc', /PORT must be a whole number/],
    ['PORT', '70000', /PORT must be between 0 and 65535/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL must be a postgres/],
    ['DATABASE_URL', 'not a url', /DATABASE_URL must be a postgres/],
    ['CRON_ALLOW_SECONDS_SCHEDULE', 'maybe', /CRON_ALLOW_SECONDS_SCHEDULE must be true or false/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL must be error, warn, info or debug/],
  ] as const) {
    test(`${variable}=${value} is rejected naming the variable and the rule`, () => {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) => err instanceof ConfigError && err.variable === variable && rule.test(err.message),
      );
    });
  }

  for (const app of ['api', 'scheduler', 'worker', 'migrate'] as const) {
    test(`${app} with PORT=abc exits 1 with one line naming PORT, no stack trace`, async () => {
      const p = spawnApp(app, { PORT: 'abc', DATABASE_URL: 'postgres://127.0.0.1:1/none' });
      const code = await p.exited;
      assert.equal(code, 1);
      assert.deepEqual(p.output, ['agentcron: invalid configuration: PORT must be a whole number (got "abc")']);
    });
  }

  test('a standalone process without DATABASE_URL says it is required', async () => {
    const p = spawnApp('worker', {});
    assert.equal(await p.exited, 1);
    assert.equal(p.output.length, 1);
    assert.match(p.output[0], /DATABASE_URL is required/);
  });
});
