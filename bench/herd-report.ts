// Section 1's report: the herds of agentcron and of its BullMQ peer side by side (lag, all started,
// CPU per occurrence by part, memory), the rows agentcron wrote per occurrence and its JSON fields.
// Several rounds of a size are summarised by their median.
import type { LagResult } from './herd.ts';
import { DEFAULTS } from './herd.ts';
import { fmt, mb, median, mib, say, table } from './report.ts';
import { statementsTable } from './statements.ts';
import { round } from './support.ts';

const PEERS = { bullmq: 'BullMQ', bullmq_delayed: 'BullMQ delayed' } as const;
const label = (r: LagResult) => (r.system === 'agentcron' ? r.setup.label : PEERS[r.system]);
const prefix = (system: string) => (system === 'agentcron' ? '' : `${system}_`);
const sizeKey = (n: number) => (n >= 1000 ? `${n / 1000}k` : String(n));
const us = (seconds: number, n: number) => (seconds * 1e6) / n;

/** The CPU per occurrence of a herd, in µs, by part and in all (the parts only: not the rest of the machine). */
export function cpuPerOccurrence(r: LagResult): Record<string, number> & { total: number } {
  const parts = Object.fromEntries(Object.entries(r.cost.parts).map(([k, s]) => [k, us(s, r.crons)]));
  return { ...parts, total: Object.values(parts).reduce((s, x) => s + x, 0) };
}

function bySize(results: LagResult[], system: LagResult['system']): Map<number, LagResult[]> {
  const out = new Map<number, LagResult[]>();
  for (const r of results.filter((x) => x.system === system && x.setup.key === '')) out.set(r.crons, [...(out.get(r.crons) ?? []), r]);
  return out;
}

export function herdTable(results: LagResult[], bullmqNote: string): void {
  say('1. Herds: N stateless echo crons due at the same instant; agentcron = 1 scheduler + 1 worker process, defaults');
  say(`   ${bullmqNote}`);
  say(
    '   lag to start = execution start minus the scheduled instant (agentcron: the run claimed by the worker, database clock; ' +
      'BullMQ: its processor called, the same machine clock); enqueue = agentcron ledger row written by the scheduler',
  );
  const head = [
    'crons',
    'round',
    'setup',
    'enqueue p50/p99/max ms',
    'start p50/p99/max ms',
    'claim wait p50/p99 ms',
    'all started s',
    'all ended s',
    'runs/s',
    'succeeded',
  ];
  const three = (x: { p50: number; p99: number; max: number }) => `${fmt(x.p50)} / ${fmt(x.p99)} / ${fmt(x.max)}`;
  table(
    head,
    results.map((r) => [
      fmt(r.crons),
      String(r.round),
      label(r),
      r.system !== 'agentcron' ? '—' : three(r.enqueue),
      three(r.start),
      r.system !== 'agentcron' ? '—' : `${fmt(r.queue.p50)} / ${fmt(r.queue.p99)}`,
      fmt(r.all_started_s, 2),
      fmt(r.all_ended_s, 2),
      fmt(r.crons / r.all_ended_s),
      fmt(r.succeeded) + (r.inserted_late ? ' (created after the due instant!)' : ''),
    ]),
  );
  const ac = bySize(results, 'agentcron');
  for (const peer of ['bullmq', 'bullmq_delayed'] as const) {
    const bq = bySize(results, peer);
    if (!bq.size) continue;
    const p = PEERS[peer];
    say();
    say(`   agentcron against ${p} (median over rounds; ratio = agentcron / ${p}, below 1 is agentcron ahead):`);
    const rows = [...ac.entries()].map(([n, a]) => {
      const b = bq.get(n) ?? [];
      const p99a = median(a.map((r) => r.start.p99));
      const p99b = median(b.map((r) => r.start.p99));
      const alla = median(a.map((r) => r.all_started_s));
      const allb = median(b.map((r) => r.all_started_s));
      const spread = (xs: LagResult[]) => xs.map((r) => fmt(r.start.p99)).join(', ');
      return [
        fmt(n),
        String(a.length),
        fmt(p99a),
        fmt(p99b),
        fmt(p99a / p99b, 2),
        `${spread(a)} | ${spread(b)}`,
        fmt(alla, 2),
        fmt(allb, 2),
        fmt(alla / allb, 2),
      ];
    });
    table(
      [
        'crons',
        'rounds',
        'agentcron p99 ms',
        `${p} p99 ms`,
        'p99 ratio',
        `p99 per round (agentcron | ${p})`,
        'agentcron all started s',
        `${p} all started s`,
        'ratio',
      ],
      rows,
    );
  }
  say();
  say(
    '   CPU per occurrence (µs of CPU from 1 s plus CRON_LOOKAHEAD_MS before the due instant until the last run ended, divided by N; ' +
      '"others" = the rest of the machine meanwhile: other people, the bench):',
  );
  table(
    ['crons', 'round', 'system', 'total µs', 'postgres / redis µs', 'scheduler µs', 'worker µs', 'others µs', 'window s'],
    results.map((r) => {
      const c = cpuPerOccurrence(r);
      return [
        fmt(r.crons),
        String(r.round),
        label(r),
        fmt(c.total),
        fmt(c.postgres ?? c.redis),
        fmt(c.scheduler ?? NaN),
        fmt(c.worker),
        fmt(us(r.cost.others, r.crons)),
        fmt(r.cost.seconds, 1),
      ];
    }),
  );
  say('   postgres = the whole server process tree (backends, background processes, backends that ended meanwhile): on a shared server, other sessions too');
  say('   memory at the end (RSS / peak MB): ' + results.map((r) => `${fmt(r.crons)} ${label(r)} r${r.round}: ${memoryLine(r)}`).join('; '));
  const defaults = results.filter((r) => r.system === 'agentcron' && r.setup === DEFAULTS);
  say(
    '   table sizes right after (no VACUUM): ' +
      defaults
        .filter((r) => r.round === 1 && r.bytes)
        .map(
          (r) =>
            `${fmt(r.crons)} crons: crons ${mib(r.bytes!.crons)}, ledger ${mib(r.bytes!.ledger)} (${fmt(r.bytes!.ledger / r.crons)} B/row), ` +
            `pg-boss job ${mib(r.bytes!.jobs)} (${fmt(r.bytes!.jobs / r.crons)} B/job), runs ${mib(r.bytes!.runs)}, threads ${mib(r.bytes!.threads)}`,
        )
        .join('; '),
  );
  const biggest = writesOf(results);
  if (biggest) writesTable(biggest);
  if (biggest?.statements) statementsTable(biggest.statements, biggest.crons);
}

const memoryLine = (r: LagResult) =>
  Object.entries(r.cost.memory)
    .map(([k, m]) => `${k} ${fmt(mb(m.rss))} / ${fmt(mb(m.peak))}`)
    .join(', ');

/** The herd whose rows are reported: the first round of 10,000 with defaults, else the biggest. */
function writesOf(results: LagResult[]): LagResult | undefined {
  const d = results.filter((r) => r.system === 'agentcron' && r.setup === DEFAULTS && r.writes);
  return d.find((r) => r.crons === 10_000) ?? d.sort((a, b) => b.crons - a.crons)[0];
}

function writesTable(r: LagResult): void {
  const n = r.crons;
  say();
  say(`   Rows written per occurrence, ${fmt(n)} herd (pg_stat_user_tables deltas from the insert until every session ended):`);
  const rows = r.writes!.map((w) => [
    w.table,
    w.partial ? `${w.indexes} (${w.partial} partial)` : String(w.indexes),
    fmt(w.ins / n, 2),
    fmt(w.upd / n, 2),
    fmt(w.hot / n, 2),
    w.upd ? `${fmt((w.hot / w.upd) * 100)}%` : '—',
    fmt(w.del / n, 2),
    fmt(((w.ins + w.upd - w.hot) * (w.indexes - w.partial)) / n, 1),
  ]);
  const sum = (f: (w: NonNullable<LagResult['writes']>[number]) => number) => r.writes!.reduce((s, w) => s + f(w), 0) / n;
  rows.push([
    'all',
    '',
    fmt(
      sum((w) => w.ins),
      2,
    ),
    fmt(
      sum((w) => w.upd),
      2,
    ),
    fmt(
      sum((w) => w.hot),
      2,
    ),
    '',
    fmt(
      sum((w) => w.del),
      2,
    ),
    fmt(
      sum((w) => (w.ins + w.upd - w.hot) * (w.indexes - w.partial)),
      1,
    ),
  ]);
  table(['table', 'indexes', 'inserted', 'updated', 'HOT', 'HOT %', 'deleted', 'index entries ≥'], rows);
  say(
    '   index entries ≥ (inserted + non-HOT updates) × non-partial indexes: each writes one entry in every such index ' +
      '(and in a partial one when the row matches its predicate: not counted)',
  );
  const trips = Object.entries(r.round_trips ?? {})
    .map(([k, v]) => `${k} ${fmt(v / n, 3)}`)
    .join(', ');
  say(
    `   per occurrence: ${fmt(r.xacts! / n, 3)} transactions in the database, ${fmt(r.wal_bytes! / n)} B of WAL (the whole server), ` +
      `round trips to PostgreSQL (queries sent through pg): ${trips}`,
  );
}

/** The herds' JSON fields: agentcron's existing keys (medians over rounds), BullMQ's beside them, ratios, CPU and memory. */
export function herdFields(results: LagResult[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const groups = new Map<string, LagResult[]>();
  for (const r of results) {
    const g = `${r.system}\t${sizeKey(r.crons)}${r.setup.key}`;
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  for (const [g, rs] of groups) {
    const [system, k] = g.split('\t');
    const pre = prefix(system);
    const m = (f: (r: LagResult) => number) => median(rs.map(f));
    const cpu = rs.map(cpuPerOccurrence);
    Object.assign(out, {
      [`${pre}lag_to_start_p50_ms_${k}`]: round(m((r) => r.start.p50)),
      [`${pre}lag_to_start_p99_ms_${k}`]: round(m((r) => r.start.p99)),
      [`${pre}lag_to_start_max_ms_${k}`]: round(m((r) => r.start.max)),
      ...(system === 'agentcron'
        ? { [`enqueue_lag_p50_ms_${k}`]: round(m((r) => r.enqueue.p50)), [`enqueue_lag_p99_ms_${k}`]: round(m((r) => r.enqueue.p99)) }
        : {}),
      [`${pre}all_started_s_${k}`]: round(
        m((r) => r.all_started_s),
        2,
      ),
      [`${pre}herd_runs_per_s_${k}`]: round(m((r) => r.crons / r.all_ended_s)),
      [`${pre}cpu_us_per_occurrence_${k}`]: round(median(cpu.map((c) => c.total))),
      ...Object.fromEntries(Object.keys(rs[0].cost.parts).map((p) => [`${pre}cpu_us_per_occurrence_${k}_${p}`, round(median(cpu.map((c) => c[p])))])),
      [`${pre}rss_mb_${k}`]: Object.fromEntries(Object.entries(rs[rs.length - 1].cost.memory).map(([p, v]) => [p, mb(v.rss)])),
      ...(rs.length > 1 ? { [`${pre}lag_to_start_p99_ms_${k}_rounds`]: rs.map((r) => round(r.start.p99)) } : {}),
    });
  }
  for (const g of [...groups.keys()].filter((x) => !x.startsWith('agentcron\t'))) {
    const [system, k] = g.split('\t');
    const ratio = (key: string, digits = 2) => round(Number(out[key]) / Number(out[`${system}_${key}`]), digits);
    out[`lag_to_start_p99_ratio_to_${system}_${k}`] = ratio(`lag_to_start_p99_ms_${k}`);
    out[`all_started_ratio_to_${system}_${k}`] = ratio(`all_started_s_${k}`);
    out[`cpu_per_occurrence_ratio_to_${system}_${k}`] = ratio(`cpu_us_per_occurrence_${k}`);
  }
  // The headline: CPU per occurrence over the 10,000 herd (else the biggest), by part.
  const headline = ['10k', ...[...groups.keys()].map((g) => g.split('\t')[1]).reverse()].find((k) => out[`cpu_us_per_occurrence_${k}`] !== undefined);
  if (headline) {
    for (const pre of ['', ...Object.keys(PEERS).map(prefix)]) {
      const own = new RegExp(`^${pre}cpu_us_per_occurrence_${headline}(_(postgres|scheduler|worker|redis))?$`);
      for (const key of Object.keys(out).filter((x) => own.test(x))) out[key.replace(`_${headline}`, '')] = out[key];
    }
  }
  const w = writesOf(results);
  if (w) {
    const n = w.crons;
    out[`rows_per_occurrence_${sizeKey(n)}`] = Object.fromEntries(
      w.writes!.map((t) => [
        t.table,
        { indexes: t.indexes, ins: round(t.ins / n, 3), upd: round(t.upd / n, 3), hot_upd: round(t.hot / n, 3), del: round(t.del / n, 3) },
      ]),
    );
    out[`xacts_per_occurrence_${sizeKey(n)}`] = round(w.xacts! / n, 3);
    out[`wal_bytes_per_occurrence_${sizeKey(n)}`] = round(w.wal_bytes! / n);
    out[`round_trips_per_occurrence_${sizeKey(n)}`] = Object.fromEntries(Object.entries(w.round_trips ?? {}).map(([k, v]) => [k, round(v / n, 3)]));
  }
  return out;
}
