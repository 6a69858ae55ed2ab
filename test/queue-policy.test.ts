import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../libs/config/index.ts';
import { createLogger } from '../libs/log/index.ts';
import { QUEUES, QUEUE_POLICY_VERSION, queueDefinitions, queueSettings } from '../libs/queue/index.ts';
import type { PgBoss } from '../libs/queue/index.ts';
import { createTestDatabase } from './support/db.ts';
import type { TestDatabase } from './support/db.ts';
import { startTestQueue } from './support/engine.ts';

// The queue policy carries the version that wrote it: an old process restarted after a release
// never overwrites the new policy (issue 23: retry_delay 1 -> 5 by an old worker).

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', json: true, service: 'test' });
  for (const t of logger.transports) t.silent = true;
  logger.on('data', (info: { message: string }) => void lines.push(info.message));
  return { logger, lines };
}

describe('queue policy version', () => {
  let db: TestDatabase;
  const started: PgBoss[] = [];
  before(async () => {
    db = await createTestDatabase('queue_policy');
  });
  after(async () => {
    for (const b of started) await b.stop({ graceful: false }).catch(() => {});
    await db?.drop();
  });
  const stored = async (queue: string) =>
    (await db.pool.query(`SELECT retry_delay, heartbeat_seconds FROM pgboss.queue WHERE name = $1`, [queue])).rows[0] as {
      retry_delay: number;
      heartbeat_seconds: number;
    };
  const versions = async () => (await db.pool.query(`SELECT DISTINCT version FROM agentcron_queue_policy`)).rows.map((r) => r.version as number);

  test('a newer writer writes (heartbeat included); an older one is refused, saying so; a reader names what differs', async () => {
    const first = capture();
    started.push(await startTestQueue(db.url, { logger: first.logger, policyVersion: 1, webhookRetryDelaySeconds: 1, runHeartbeatSeconds: 10 }));
    assert.equal((await stored(QUEUES.webhook)).retry_delay, 1);
    assert.deepEqual(await versions(), [1]);

    const newer = capture();
    started.push(await startTestQueue(db.url, { logger: newer.logger, policyVersion: 2, webhookRetryDelaySeconds: 5, runHeartbeatSeconds: 20 }));
    assert.deepEqual(await stored(QUEUES.webhook).then((q) => q.retry_delay), 5);
    assert.equal((await stored(QUEUES.run)).heartbeat_seconds, 20);
    assert.deepEqual(await versions(), [2]);

    // The old worker restarted after the release, with its old settings and MIGRATE_ON_START=true.
    const old = capture();
    started.push(await startTestQueue(db.url, { logger: old.logger, policyVersion: 1, webhookRetryDelaySeconds: 1, runHeartbeatSeconds: 10 }));
    assert.equal((await stored(QUEUES.webhook)).retry_delay, 5);
    assert.equal((await stored(QUEUES.run)).heartbeat_seconds, 20);
    assert.deepEqual(await versions(), [2]);
    assert.ok(
      old.lines.some((l) => /^queue policy left as it is: a newer agentcron wrote it \(policy version 2, this process has 1\)$/.test(l)),
      old.lines.join('\n'),
    );
    // ... and says, in one line, which stored settings it runs with that differ from its own.
    const differ = old.lines.filter((l) => /^stored queue settings differ/.test(l));
    assert.equal(differ.length, 1, old.lines.join('\n'));
    assert.match(differ[0], /agentcron\.run heartbeatSeconds 10 \(stored 20\)/);

    // A process that does not write policy says the same, and writes nothing.
    const reader = capture();
    started.push(await startTestQueue(db.url, { logger: reader.logger, writePolicy: false, migrate: false, runHeartbeatSeconds: 10 }));
    assert.equal(
      reader.lines.filter((l) => /^stored queue settings differ.*agentcron\.run heartbeatSeconds 10 \(stored 20\)/.test(l)).length,
      1,
      reader.lines.join('\n'),
    );
    assert.equal((await stored(QUEUES.run)).heartbeat_seconds, 20);
  });

  test('the policy version is raised with every change to the queue definitions', () => {
    // Changed queueDefinitions? Raise QUEUE_POLICY_VERSION (libs/queue/policy.ts) and record the new hash here.
    const pinned: Record<number, string> = { 1: '950b2f14e408e4fd' };
    const hash = createHash('sha256')
      .update(JSON.stringify(queueDefinitions(queueSettings(loadConfig({})))))
      .digest('hex')
      .slice(0, 16);
    assert.equal(pinned[QUEUE_POLICY_VERSION], hash, `queue definitions changed: raise QUEUE_POLICY_VERSION to ${QUEUE_POLICY_VERSION + 1} and pin ${hash}`);
  });
});
