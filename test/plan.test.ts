import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planOccurrences } from '../libs/crons/index.ts';
import type { MissedPolicy } from '../libs/crons/index.ts';
import { parseSchedule } from '../libs/schedule/index.ts';

const limits = { missedMax: 100, graceMs: 60_000, ledgerCap: 1000 };
const T = (s: string) => new Date(`2025-06-02T${s}Z`);
const iso = (ds: { scheduled_for: Date }[]) => ds.map((d) => d.scheduled_for.toISOString().slice(11, 19));

function plan(
  expr: string,
  next: string,
  now: string,
  opts: { policy?: MissedPolicy; end?: string; graceMs?: number; missedMax?: number; coveredFrom?: string } = {},
) {
  return planOccurrences(
    {
      schedule: parseSchedule(expr, { timezone: 'UTC', allowSeconds: true }),
      nextRunDate: T(next),
      endTime: opts.end ? T(opts.end) : null,
      missedPolicy: opts.policy ?? 'latest',
    },
    T(now),
    {
      ...limits,
      graceMs: opts.graceMs ?? limits.graceMs,
      missedMax: opts.missedMax ?? limits.missedMax,
      coveredFrom: opts.coveredFrom ? T(opts.coveredFrom) : null,
    },
  );
}

describe('occurrence planning', () => {
  test('occurrences due while a scheduler ran (unable to reach the database) are late, not missed: they all fire', () => {
    // The scheduler has run since 10:00:03; it could not pass from 10:00:05 to 10:00:12.
    const p = plan('* * * * * *', '10:00:05', '10:00:12.300', { coveredFrom: '10:00:03' });
    assert.deepEqual(iso(p.fire), ['10:00:05', '10:00:06', '10:00:07', '10:00:08', '10:00:09', '10:00:10', '10:00:11', '10:00:12']);
    assert.deepEqual(p.skipped, []);
    assert.equal(p.missedCount, 0);
    // Only what fell due before it started (no scheduler ran) follows the policy: latest skips them.
    const q = plan('* * * * * *', '10:00:00', '10:00:04.5', { coveredFrom: '10:00:03' });
    assert.deepEqual(iso(q.fire), ['10:00:03', '10:00:04']);
    assert.deepEqual(iso(q.skipped), ['10:00:00', '10:00:01', '10:00:02']);
    assert.ok(q.skipped.every((s) => s.reason === 'missed'));
    assert.equal(q.fire[1].skipped_count, 3);
    // At most CRON_MISSED_MAX at once, newest first; none still drops what is later than its grace.
    assert.deepEqual(iso(plan('* * * * * *', '10:00:05', '10:00:12', { coveredFrom: '10:00:00', missedMax: 3 }).fire), ['10:00:10', '10:00:11', '10:00:12']);
    assert.deepEqual(iso(plan('* * * * * *', '10:00:05', '10:00:12', { coveredFrom: '10:00:00', policy: 'none', graceMs: 2000 }).fire), [
      '10:00:10',
      '10:00:11',
      '10:00:12',
    ]);
  });

  test('an on-time occurrence fires once and the next follows from the scheduled time, not from now', () => {
    const p = plan('* * * * *', '10:00:00', '10:00:45');
    assert.deepEqual(iso(p.fire), ['10:00:00']);
    assert.equal(p.fire[0].skipped_count, 0);
    assert.deepEqual(p.skipped, []);
    assert.equal(p.nextRunDate?.toISOString(), T('10:01:00').toISOString());
  });

  test('latest (default): after downtime the most recent missed occurrence fires, the rest are recorded as missed', () => {
    const p = plan('*/5 * * * *', '09:00:00', '10:02:00');
    assert.deepEqual(iso(p.fire), ['10:00:00']);
    assert.equal(p.fire[0].skipped_count, 12);
    assert.equal(p.missedCount, 12);
    assert.equal(p.skipped.length, 12);
    assert.ok(p.skipped.every((s) => s.reason === 'missed'));
    assert.deepEqual(iso(p.skipped).slice(0, 2), ['09:00:00', '09:05:00']);
    assert.equal(p.nextRunDate?.toISOString(), T('10:05:00').toISOString());
  });

  test('all: every missed occurrence fires, up to the maximum; older ones beyond it are recorded as missed', () => {
    const all = plan('*/5 * * * *', '09:00:00', '10:02:00', { policy: 'all' });
    assert.equal(all.fire.length, 13);
    assert.deepEqual(all.skipped, []);
    const capped = plan('*/5 * * * *', '09:00:00', '10:02:00', { policy: 'all', missedMax: 5 });
    assert.deepEqual(iso(capped.fire), ['09:40:00', '09:45:00', '09:50:00', '09:55:00', '10:00:00']);
    assert.equal(capped.skipped.length, 8);
  });

  test('none: missed occurrences are skipped; an occurrence within the grace period still fires', () => {
    const late = plan('*/5 * * * *', '09:00:00', '10:02:00', { policy: 'none' });
    assert.deepEqual(late.fire, []);
    assert.equal(late.skipped.length, 13);
    const onTime = plan('*/5 * * * *', '09:00:00', '10:00:30', { policy: 'none' });
    assert.deepEqual(iso(onTime.fire), ['10:00:00']);
    assert.equal(onTime.skipped.length, 12);
  });

  test('end_time: nothing after it fires, the first occurrence past it is recorded, and the cron finishes', () => {
    const p = plan('*/5 * * * *', '09:00:00', '10:02:00', { end: '09:32:00' });
    assert.deepEqual(iso(p.fire), ['09:30:00']);
    assert.equal(p.nextRunDate, null);
    const ended = p.skipped.filter((s) => s.reason === 'end_time');
    assert.deepEqual(iso(ended), ['09:35:00']);
  });

  test('end_time between this occurrence and the next: this one fires, then the cron finishes', () => {
    const p = plan('*/5 * * * *', '10:00:00', '10:00:01', { end: '10:03:00' });
    assert.deepEqual(iso(p.fire), ['10:00:00']);
    assert.equal(p.nextRunDate, null);
    assert.deepEqual(p.skipped, []);
  });

  test('end_time exactly on an occurrence: that occurrence still fires', () => {
    const p = plan('*/5 * * * *', '10:00:00', '10:00:01', { end: '10:00:00' });
    assert.deepEqual(iso(p.fire), ['10:00:00']);
    assert.equal(p.nextRunDate, null);
  });

  test('a seconds schedule down for days: the latest occurrence is found without enumerating them all', () => {
    const p = planOccurrences(
      {
        schedule: parseSchedule('* * * * * *', { timezone: 'UTC', allowSeconds: true }),
        nextRunDate: new Date('2025-06-01T00:00:00Z'),
        endTime: null,
        missedPolicy: 'latest',
      },
      new Date('2025-06-04T12:00:00.500Z'),
      limits,
    );
    assert.deepEqual(
      p.fire.map((f) => f.scheduled_for.toISOString()),
      ['2025-06-04T12:00:00.000Z'],
    );
    assert.ok(p.missedCount >= 10_000);
    assert.equal(p.skipped.length, limits.ledgerCap);
    assert.equal(p.nextRunDate?.toISOString(), '2025-06-04T12:00:01.000Z');
  });

  test('DST: a 02:30 New York cron that missed the spring-forward day fires at 03:00 EDT, once', () => {
    const p = planOccurrences(
      {
        schedule: parseSchedule('30 2 * * *', { timezone: 'America/New_York', allowSeconds: false }),
        nextRunDate: new Date('2025-03-09T07:00:00Z'),
        endTime: null,
        missedPolicy: 'latest',
      },
      new Date('2025-03-09T07:00:00.200Z'),
      limits,
    );
    assert.deepEqual(
      p.fire.map((f) => f.scheduled_for.toISOString()),
      ['2025-03-09T07:00:00.000Z'],
    );
    assert.equal(p.nextRunDate?.toISOString(), '2025-03-10T06:30:00.000Z');
  });
});
