// `agentcron` (apps/cli/main.ts): the crons API and /health from a terminal, over the public HTTP
// API only, so a key sees from here exactly what it sees anywhere else. Tables for people,
// --json for scripts. Exit codes: 0 done, 1 the API refused or could not be reached (its
// `detail` is printed), 2 the command line is wrong.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import cronstrue from 'cronstrue';
import { ApiClient, ApiError } from './client.ts';
import { resolveCronId } from './resolve.ts';
import { RUN_ALIASES, RUN_COMMANDS, runRunsCommand } from './runs.ts';
import { between, cut, duration, formatFields, formatTable, json, time } from './table.ts';

export const EXIT = { ok: 0, api: 1, usage: 2 } as const;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
}

export const USAGE = `usage: agentcron [--url URL] [--api-key KEY] [--json] <command>

Talks to the agentcron HTTP API at AGENTCRON_URL (default http://localhost:8000) with the key
AGENTCRON_API_KEY (AUTH_MODE=api_key); --url and --api-key override them.

crons ls|list [--assistant ID] [--enabled true|false] [--metadata JSON|k=v,...] [--thread ID]
              [--sort created_at|updated_at|next_run_date] [--limit N] [--offset N] [--wide]
crons get|show <cron>
crons create --assistant ID --schedule 'CRON' [--timezone TZ] [--input JSON] [--metadata JSON]
             [--thread ID] [--end-time ISO] [--paused] [--webhook URL] [--on-run-completed delete|keep]
             [--missed-policy latest|all|none] [--overlap-policy allow|skip|buffer_one]
             [--jitter S] [--retry-max-attempts N] [--retry-initial-interval S] [--retry-backoff C]
             [--retry-max-interval S] [--retry-policy JSON]
crons update <cron_id> [--schedule 'CRON'] [--timezone TZ] [--input JSON] [--metadata JSON]
             [--end-time ISO|none] [--enabled true|false] [--webhook URL|none] [...the create options]
             [--retry-policy none]   the --retry-* options change only the fields they name
crons pause <cron_id> [--note TEXT]     stop firing (with a note, where the server keeps one)
crons resume <cron_id>
crons trigger <cron_id>                 run it now
crons rm|delete <cron_id>
crons next <cron_id> [--count N] [--from ISO]       the next fire times
crons occurrences <cron_id> [--limit N] [--offset N] the ledger, newest first (attempts, why it waits)
crons preview --schedule 'CRON' [--timezone TZ] [--from ISO] [--count N] [--jitter S]
crons backfill <cron_id> --from ISO --to ISO
crons retry <cron_id> <scheduled_for>   run a failed occurrence again
runs ls|list [--status S[,S...]] [--cron CRON] [--assistant ID] [--thread ID] [--since ISO]
             [--until ISO] [--limit N] [--offset N]   runs of every thread and cron, newest first
runs get|show <run_id>                  a run: status, timings, error, output
runs cancel <run_id>
health                                  the API's /health
keys <create|list|revoke> ...           manage API keys (npm run keys; needs the database, not the API)

<cron> (and every <cron_id>, --cron): a cron's id, its name (metadata.name), or a unique
prefix of its id of 8 or more characters (as the dashboard shows ids).

Options for every command:
  --url URL        the API (AGENTCRON_URL)
  --api-key KEY    the key (AGENTCRON_API_KEY)
  --admin          an admin key's view: every user's crons (/admin/crons) for ls, get, update,
                   pause, resume, trigger and rm; ls gains --user ID
  --json           the API's JSON answer, for scripts (errors too: {"detail", "status",
                   "exit_code"} on stderr)
  --wide           crons ls: every column, however wide (default: fits 120 columns)
  -h, --help       this text

Exit codes: 0 done; 1 the API answered an error (its detail is printed) or cannot be reached; 2 usage.`;

const OPTIONS = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  json: { type: 'boolean' },
  admin: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  assistant: { type: 'string' },
  schedule: { type: 'string' },
  timezone: { type: 'string' },
  input: { type: 'string' },
  metadata: { type: 'string' },
  thread: { type: 'string' },
  'end-time': { type: 'string' },
  enabled: { type: 'string' },
  paused: { type: 'boolean' },
  webhook: { type: 'string' },
  'on-run-completed': { type: 'string' },
  'missed-policy': { type: 'string' },
  'overlap-policy': { type: 'string' },
  jitter: { type: 'string' },
  'retry-max-attempts': { type: 'string' },
  'retry-initial-interval': { type: 'string' },
  'retry-backoff': { type: 'string' },
  'retry-max-interval': { type: 'string' },
  'retry-policy': { type: 'string' },
  note: { type: 'string' },
  count: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  sort: { type: 'string' },
  user: { type: 'string' },
  wide: { type: 'boolean' },
  status: { type: 'string' },
  cron: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

export type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

const GLOBAL = ['url', 'api-key', 'json', 'admin', 'help'];
/** The --retry-* options and the retry_policy field each sets. */
const RETRY_OPTIONS = {
  'retry-max-attempts': 'max_attempts',
  'retry-initial-interval': 'initial_interval_seconds',
  'retry-backoff': 'backoff_coefficient',
  'retry-max-interval': 'maximum_interval_seconds',
} as const;
const CRON_FIELDS = [
  'schedule',
  'timezone',
  'input',
  'metadata',
  'end-time',
  'webhook',
  'on-run-completed',
  'missed-policy',
  'overlap-policy',
  'jitter',
  'retry-policy',
  ...Object.keys(RETRY_OPTIONS),
];

/** Each command: its positional arguments and the options it takes (besides the global ones). */
const COMMANDS: Record<string, { args: string[]; options: string[] }> = {
  ls: { args: [], options: ['assistant', 'enabled', 'metadata', 'thread', 'sort', 'limit', 'offset', 'user', 'wide'] },
  get: { args: ['cron_id'], options: [] },
  create: { args: [], options: ['assistant', 'thread', 'paused', 'enabled', ...CRON_FIELDS] },
  update: { args: ['cron_id'], options: ['enabled', ...CRON_FIELDS] },
  pause: { args: ['cron_id'], options: ['note'] },
  resume: { args: ['cron_id'], options: [] },
  trigger: { args: ['cron_id'], options: [] },
  rm: { args: ['cron_id'], options: [] },
  next: { args: ['cron_id'], options: ['count', 'from'] },
  occurrences: { args: ['cron_id'], options: ['limit', 'offset'] },
  preview: { args: [], options: ['schedule', 'timezone', 'from', 'count', 'jitter'] },
  backfill: { args: ['cron_id'], options: ['from', 'to'] },
  retry: { args: ['cron_id', 'scheduled_for'], options: [] },
};
const ALIASES: Record<string, string> = { list: 'ls', show: 'get', delete: 'rm', remove: 'rm' };
/** Endpoints newer than the crons API itself: a server without them is told apart from a refusal. */
const OPTIONAL_ENDPOINTS: Record<string, string> = {
  preview: 'POST /runs/crons/preview',
  backfill: 'POST /runs/crons/{cron_id}/backfill',
  retry: 'POST /runs/crons/{cron_id}/occurrences/{scheduled_for}/retry',
};

/** A wrong command line: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {}

// ---- argument readers ----

function jsonObject(name: string, text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--${name} must be JSON (${(err as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new UsageError(`--${name} must be a JSON object, e.g. '{"topic": "news"}'`);
  return v as Record<string, unknown>;
}

/** A JSON object, or `key=value` pairs separated by commas (values read as JSON when they are). */
function metadataFilter(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  if (text.trim().startsWith('{')) return jsonObject('metadata', text);
  const out: Record<string, unknown> = {};
  for (const part of text.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`--metadata: "${part}" is neither JSON nor key=value`);
    const raw = part.slice(i + 1).trim();
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[part.slice(0, i).trim()] = value;
  }
  return out;
}

function bool(name: string, text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  const t = text.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(t)) return true;
  if (['false', 'no', '0', 'off'].includes(t)) return false;
  throw new UsageError(`--${name} must be true or false (got "${text}")`);
}

export function int(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a whole number of at least ${min} (got "${text}")`);
  return n;
}

/** A number (the server checks its range and names the field). */
function num(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number (got "${text}")`);
  return n;
}

/**
 * The retry_policy the options give: --retry-policy JSON (the whole policy; "none" clears it on
 * update), and each --retry-* option over it, or over `current` (the cron's stored policy, on
 * update: a PATCH replaces the policy whole, so the options change only the fields they name).
 * undefined when no option is given.
 */
function retryPolicy(v: Values, update: boolean, current?: Record<string, unknown> | null): Record<string, unknown> | null | undefined {
  const fields = Object.entries(RETRY_OPTIONS).filter(([opt]) => v[opt as keyof Values] !== undefined);
  if (v['retry-policy'] === undefined && fields.length === 0) return undefined;
  let policy: Record<string, unknown> | null = current ?? null;
  if (v['retry-policy'] !== undefined) {
    if (update && clearable(v['retry-policy']) === null) {
      if (fields.length) throw new UsageError('--retry-policy none clears the policy: give no --retry-* option with it');
      return null;
    }
    policy = jsonObject('retry-policy', v['retry-policy'])!;
  }
  const out: Record<string, unknown> = { ...(policy ?? {}) };
  for (const [opt, field] of fields) {
    const text = v[opt as keyof Values] as string;
    out[field] = field === 'max_attempts' ? int(opt, text, 1) : num(opt, text);
  }
  return out;
}

/** `none` (or an empty string) clears a field on update: sent as null. */
const clearable = (text: string | undefined): string | null | undefined => (text === undefined ? undefined : text === '' || text === 'none' ? null : text);

function describe(schedule: string): string | null {
  try {
    return cronstrue.toString(schedule, { use24HourTimeFormat: true, throwExceptionOnParseError: true });
  } catch {
    return null;
  }
}

/** The create/update fields the options give. */
function cronBody(v: Values, update: boolean): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (v.schedule !== undefined) body.schedule = v.schedule;
  if (v.timezone !== undefined) body.timezone = update ? clearable(v.timezone) : v.timezone;
  const input = jsonObject('input', v.input);
  if (input !== undefined) body.input = input;
  const metadata = jsonObject('metadata', v.metadata);
  if (metadata !== undefined) body.metadata = metadata;
  if (v['end-time'] !== undefined) body.end_time = update ? clearable(v['end-time']) : v['end-time'];
  if (v.webhook !== undefined) body.webhook = update ? clearable(v.webhook) : v.webhook;
  if (v['on-run-completed'] !== undefined) body.on_run_completed = v['on-run-completed'];
  if (v['missed-policy'] !== undefined) body.missed_policy = v['missed-policy'];
  if (v['overlap-policy'] !== undefined) body.overlap_policy = v['overlap-policy'];
  const enabled = bool('enabled', v.enabled);
  if (enabled !== undefined) body.enabled = enabled;
  const jitter = int('jitter', v.jitter, 0);
  if (jitter !== undefined) body.jitter_seconds = jitter;
  if (!update) {
    const policy = retryPolicy(v, false);
    if (policy !== undefined) body.retry_policy = policy;
  }
  return body;
}

// ---- output ----

type Cron = Record<string, any>;

function cronState(c: Cron): string {
  if (c.enabled) return 'active';
  if (c.finished_at) return 'finished';
  return c.paused_reason ? `paused (${c.paused_reason})` : 'paused';
}

function cronsTable(crons: Cron[], admin: boolean): string {
  const headers = ['CRON_ID', 'NAME', 'SCHEDULE', 'DESCRIPTION', 'TIMEZONE', 'STATE', 'NEXT_RUN', 'LAST_RUN', ...(admin ? ['OWNER'] : []), 'METADATA'];
  const rows = crons.map((c) => [
    c.cron_id,
    typeof c.metadata?.name === 'string' ? c.metadata.name : '',
    c.schedule,
    cut(describe(c.schedule) ?? '', 40),
    c.timezone ?? 'UTC',
    cut(cronState(c), 30),
    time(c.next_run_date),
    c.last_run_status ? `${c.last_run_status}${c.last_run_error ? `: ${cut(c.last_run_error, 40)}` : ''}` : 'never',
    ...(admin ? [c.user_id] : []),
    cut(json(c.metadata && Object.keys(c.metadata).length ? c.metadata : ''), 40),
  ]);
  return formatTable(headers, rows, 70);
}

/** The crons table that fits 120 columns: a short id, the name, the schedule and the state. */
function cronsNarrowTable(crons: Cron[], admin: boolean): string {
  const headers = ['ID', 'NAME', 'SCHEDULE', 'TIMEZONE', 'STATE', 'NEXT_RUN', 'LAST_RUN', ...(admin ? ['OWNER'] : [])];
  const rows = crons.map((c) => [
    String(c.cron_id).slice(0, 8),
    cut(typeof c.metadata?.name === 'string' ? c.metadata.name : '', admin ? 16 : 22),
    cut(c.schedule, 18),
    cut(c.timezone ?? 'UTC', 16),
    cronState(c).replace(/ \(.*$/, ''),
    c.next_run_date ? time(c.next_run_date).slice(0, 16).replace('T', ' ') : '-',
    cut(c.last_run_status ?? 'never', 11),
    ...(admin ? [cut(c.user_id, 10)] : []),
  ]);
  return formatTable(headers, rows, 22);
}

function cronFields(c: Cron): string {
  return formatFields([
    ['cron_id', c.cron_id],
    ['name', typeof c.metadata?.name === 'string' ? c.metadata.name : undefined],
    ['schedule', c.schedule],
    ['description', describe(c.schedule) ?? '-'],
    ['timezone', c.timezone ?? 'UTC'],
    ['state', cronState(c)],
    ['next_run', c.next_run_date ? `${time(c.next_run_date)}${c.enabled ? '' : ' (if resumed)'}` : null],
    ['last_run', c.last_run_status ? `${c.last_run_status} at ${time(c.last_run_at)}` : 'never'],
    ['last_error', c.last_run_error ?? undefined],
    ['assistant_id', c.assistant_id],
    ['thread_id', c.thread_id ?? 'none (stateless: a fresh thread per run)'],
    ['owner', c.user_id],
    ['on_run_completed', c.on_run_completed ?? undefined],
    ['missed_policy', c.missed_policy],
    ['overlap_policy', c.thread_id ? undefined : c.overlap_policy],
    ['jitter', c.jitter_seconds ? `${c.jitter_seconds}s (each occurrence starts at a fixed offset within it)` : undefined],
    [
      'retry_policy',
      c.payload?.retry_policy ? json(c.payload.retry_policy) : c.payload?.config?.retry_policy ? `${json(c.payload.config.retry_policy)} (config)` : undefined,
    ],
    ['end_time', time(c.end_time)],
    ['input', json(c.payload?.input) || null],
    ['metadata', json(c.metadata)],
    ['created_at', time(c.created_at)],
    ['updated_at', time(c.updated_at)],
  ]);
}

/**
 * Why a pending occurrence has not started: a retry's backoff, a limit with no room, its jittered
 * planned start still ahead, or a free worker; null when it is not waiting.
 */
export function waitingText(o: Record<string, any>, now = Date.now()): string | null {
  if (o.waiting === 'retry') return `retry at ${time(o.not_before)}`;
  if (typeof o.waiting === 'string' && o.waiting.startsWith('limit:')) return `limit ${o.waiting.slice('limit:'.length)}`;
  if (o.waiting) return String(o.waiting);
  if (o.status !== 'enqueued') return null;
  if (o.planned_for && new Date(o.planned_for).getTime() > now) return `planned ${time(o.planned_for)}`;
  return 'a free worker';
}

/** The earlier attempts' errors, oldest first: "#1 error RateLimited: 429 ...; #2 ...". */
function attemptErrors(log: unknown): string {
  if (!Array.isArray(log) || log.length === 0) return '';
  return log
    .map((a: any, i: number) => {
      const e = a?.error;
      const text = e && typeof e === 'object' ? [e.error, e.message].filter(Boolean).join(': ') : json(e);
      return `#${a?.attempt ?? i + 1} ${a?.status ?? 'error'}${text ? ` ${text}` : ''}`;
    })
    .join('; ');
}

function occurrencesTable(rows: Record<string, any>[]): string {
  return formatTable(
    ['SCHEDULED_FOR', 'TRIGGER', 'STATUS', 'REASON', 'ATTEMPTS', 'WAITING', 'LAG', 'WAIT', 'DURATION', 'RUN_ID', 'DETAIL'],
    rows.map((o) => [
      time(o.scheduled_for),
      o.trigger,
      `${o.status}${o.retries ? ` (retry ${o.retries})` : ''}`,
      o.reason ?? (o.skipped_count ? `${o.skipped_count} missed before` : ''),
      o.attempts === undefined ? '' : String(o.attempts),
      waitingText(o) ?? '',
      duration(between(o.scheduled_for, o.enqueued_at ?? o.started_at)),
      duration(between(o.enqueued_at, o.started_at)),
      duration(between(o.started_at, o.ended_at)),
      o.run_id ?? '',
      [o.error ?? o.error_excerpt ?? o.output_excerpt ?? '', attemptErrors(o.attempt_log) && `earlier: ${attemptErrors(o.attempt_log)}`]
        .filter(Boolean)
        .join(' | '),
    ]),
    80,
  );
}

/** Fire times as the API lists them ({utc, local, ...marks}). */
function timesTable(times: unknown[]): string {
  return formatTable(
    ['LOCAL', 'UTC', 'NOTE'],
    times.map((t) => {
      if (typeof t === 'string') return [t, t, ''];
      const entry = t as Record<string, unknown>;
      // The DST case in words (dst_note, else dst), then any mark a newer server adds.
      const marks = entry.dst_note || entry.dst ? [json(entry.dst_note ?? `DST ${json(entry.dst)}`)] : [];
      // With jitter: when it starts (the planned start), if not at the fire time itself.
      if (typeof entry.planned_for === 'string' && entry.planned_for !== entry.utc) marks.push(`starts ${time(entry.planned_for)}`);
      for (const [k, v] of Object.entries(entry)) {
        if (['utc', 'local', 'dst', 'dst_note', 'planned_for'].includes(k) || v === null || v === false || v === undefined) continue;
        marks.push(v === true ? k : `${k}=${json(v)}`);
      }
      return [json(entry.local), time(json(entry.utc)), marks.join(' ')];
    }),
    80,
  );
}

/** An answer of a shape this CLI does not know in detail: its scalar fields, then its lists as tables. */
function generic(body: unknown): string {
  if (Array.isArray(body)) {
    if (body.length === 0) return '(none)';
    const keys = [...new Set(body.flatMap((r) => (r && typeof r === 'object' ? Object.keys(r) : [])))].slice(0, 8);
    return formatTable(
      keys.map((k) => k.toUpperCase()),
      body.map((r) => keys.map((k) => json((r as Record<string, unknown>)?.[k]))),
    );
  }
  if (!body || typeof body !== 'object') return json(body);
  // Nested objects read as dotted names (database.ok, queue.queued); lists of objects as tables.
  const fields: [string, unknown][] = [];
  const lists: [string, unknown[]][] = [];
  const walk = (prefix: string, obj: Record<string, unknown>) => {
    for (const [k, v] of Object.entries(obj)) {
      const name = prefix ? `${prefix}.${k}` : k;
      if (Array.isArray(v)) {
        if (v.every((x) => x === null || typeof x !== 'object')) fields.push([name, v.length ? v.join(', ') : '-']);
        else lists.push([name, v]);
      } else if (v && typeof v === 'object') walk(name, v as Record<string, unknown>);
      else fields.push([name, v]);
    }
  };
  walk('', body as Record<string, unknown>);
  const parts = fields.length ? [formatFields(fields)] : [];
  for (const [k, v] of lists) parts.push(`${k}:\n${generic(v)}`);
  return parts.join('\n');
}

// ---- running ----

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Runs `agentcron keys ...`: the database-side key tool (apps/keys), with this process's streams. */
function runKeys(args: string[], io: Io): Promise<number> {
  const script = fileURLToPath(new URL('../../apps/keys/main.ts', import.meta.url));
  return new Promise((resolve) => {
    // The type-stripping hooks, for an installed package (its files under node_modules: apps/cli/ts-hooks.mjs).
    const hooks = new URL('../../apps/cli/ts-hooks.mjs', import.meta.url).href;
    const child = spawn(process.execPath, ['--import', hooks, script, ...args], { stdio: 'inherit', env: io.env });
    child.on('exit', (code) => resolve(code ?? EXIT.api));
    child.on('error', (err) => {
      io.err(`agentcron keys: ${err.message}\n`);
      resolve(EXIT.api);
    });
  });
}

/** The whole CLI: answers the exit code (never calls process.exit). */
export async function main(argv: string[], io: Io): Promise<number> {
  if (argv[0] === 'keys') return runKeys(argv.slice(1), io);
  /** The crons command being run, for the hint on an endpoint this server lacks. */
  let invoked = '';
  try {
    const { values: v, positionals } = parse(argv);
    const [group, rawCommand, ...args] = positionals;
    if (v.help || group === 'help' || (!group && argv.length === 0)) {
      const asked = v.help || group === 'help';
      if (asked) io.out(`${USAGE}\n`);
      else io.err(`${USAGE}\n`);
      return asked ? EXIT.ok : EXIT.usage;
    }
    const url = v.url ?? io.env.AGENTCRON_URL ?? 'http://localhost:8000';
    const key = v['api-key'] ?? io.env.AGENTCRON_API_KEY ?? null;
    try {
      new URL(url);
    } catch {
      throw new UsageError(`--url / AGENTCRON_URL is not a URL: "${url}"`);
    }
    const client = new ApiClient(url, key || null);
    const given = Object.keys(v).filter((k) => !GLOBAL.includes(k));

    if (group === 'health') {
      if (rawCommand !== undefined) throw new UsageError(`health takes no argument (got "${rawCommand}")`);
      if (given.length) throw new UsageError(`health takes no option --${given[0]}`);
      const answer = await client.request('GET', '/health', undefined, { allowStatus: [503] });
      if (v.json) io.out(`${JSON.stringify(answer.body, null, 2)}\n`);
      else io.out(`${generic(answer.body)}\n`);
      if (answer.status !== 200) {
        io.err(`agentcron: the API is unhealthy (HTTP ${answer.status})\n`);
        return EXIT.api;
      }
      return EXIT.ok;
    }
    if (group === 'runs') {
      if (!rawCommand) throw new UsageError('runs needs a command: ls, get, cancel');
      const command = RUN_ALIASES[rawCommand] ?? rawCommand;
      const spec = RUN_COMMANDS[command];
      if (!spec) throw new UsageError(`unknown command "runs ${rawCommand}"`);
      const wrong = given.filter((k) => !spec.options.includes(k));
      if (wrong.length) throw new UsageError(`runs ${rawCommand} takes no option --${wrong[0]}`);
      if (args.length < spec.args.length) throw new UsageError(`runs ${rawCommand} needs <${spec.args.slice(args.length).join('> <')}>`);
      if (args.length > spec.args.length) throw new UsageError(`runs ${rawCommand}: unexpected argument "${args[spec.args.length]}"`);
      if (v.user !== undefined && !v.admin) throw new UsageError("--user is for --admin (an admin key listing every user's runs)");
      const done = await runRunsCommand(client, command, args, { ...v, limit: int('limit', v.limit, 1), offset: int('offset', v.offset, 0) });
      io.out(`${v.json ? JSON.stringify(done.body, null, 2) : done.text()}\n`);
      return EXIT.ok;
    }
    if (group !== 'crons') throw new UsageError(group ? `unknown command "${group}"` : 'no command');
    if (!rawCommand)
      throw new UsageError('crons needs a command: ls, get, create, update, pause, resume, trigger, rm, next, occurrences, preview, backfill, retry');
    const command = ALIASES[rawCommand] ?? rawCommand;
    const spec = COMMANDS[command];
    invoked = command;
    if (!spec) throw new UsageError(`unknown command "crons ${rawCommand}"`);
    const wrong = given.filter((k) => !spec.options.includes(k));
    if (wrong.length) throw new UsageError(`crons ${rawCommand} takes no option --${wrong[0]}`);
    if (args.length < spec.args.length) throw new UsageError(`crons ${rawCommand} needs <${spec.args.slice(args.length).join('> <')}>`);
    if (args.length > spec.args.length) throw new UsageError(`crons ${rawCommand}: unexpected argument "${args[spec.args.length]}"`);
    if (v.user !== undefined && !v.admin) throw new UsageError("--user is for --admin (an admin key listing every user's crons)");

    // A name or a short id stands for the cron's id wherever a command takes one.
    const cronId = spec.args[0] === 'cron_id' ? await resolveCronId(client, args[0], Boolean(v.admin)) : '';
    const own = `/runs/crons/${encodeURIComponent(cronId)}`;
    const scoped = v.admin ? `/admin/crons/${encodeURIComponent(cronId)}` : own;
    const print = (body: unknown, text: () => string) => io.out(`${v.json ? JSON.stringify(body, null, 2) : text()}\n`);

    switch (command) {
      case 'ls': {
        const body: Record<string, unknown> = {
          limit: int('limit', v.limit, 1) ?? 100,
          offset: int('offset', v.offset, 0) ?? 0,
        };
        if (v.assistant) body.assistant_id = v.assistant;
        const enabled = bool('enabled', v.enabled);
        if (enabled !== undefined) body.enabled = enabled;
        const metadata = metadataFilter(v.metadata);
        if (metadata) body.metadata = metadata;
        if (v.thread) body.thread_id = v.thread;
        if (v.user) body.user_id = v.user;
        if (v.sort) {
          body.sort_by = v.sort;
          body.sort_order = v.sort === 'next_run_date' ? 'asc' : 'desc';
        }
        const { body: crons } = await client.request<Cron[]>('POST', v.admin ? '/admin/crons/search' : '/runs/crons/search', body);
        if (v.json) {
          print(crons, () => '');
          return EXIT.ok;
        }
        // How many match, to say when there are more than this page (count takes the filters only).
        const { limit: _l, offset: _o, sort_by: _s, sort_order: _so, ...filters } = body;
        const total = await client
          .request<number>('POST', v.admin ? '/admin/crons/count' : '/runs/crons/count', filters)
          .then((a) => (typeof a.body === 'number' ? a.body : null))
          .catch(() => null);
        const offset = body.offset as number;
        const more =
          total !== null && total > offset + crons.length
            ? `\nshowing ${crons.length ? `${offset + 1}-${offset + crons.length}` : 'none'} of ${total} crons; --offset ${offset + crons.length} for the next ones (--limit up to 1000)`
            : '';
        print(crons, () => (crons.length ? (v.wide ? cronsTable(crons, Boolean(v.admin)) : cronsNarrowTable(crons, Boolean(v.admin))) : 'no crons') + more);
        return EXIT.ok;
      }
      case 'get': {
        const { body: cron } = await client.request<Cron>('GET', scoped);
        print(cron, () => cronFields(cron));
        return EXIT.ok;
      }
      case 'create': {
        if (!v.assistant) throw new UsageError('crons create needs --assistant <assistant or graph id>');
        if (!v.schedule) throw new UsageError("crons create needs --schedule '<cron expression>'");
        const body: Record<string, unknown> = { assistant_id: v.assistant, ...cronBody(v, false) };
        if (v.paused) {
          if (body.enabled === true) throw new UsageError('--paused and --enabled true contradict each other');
          body.enabled = false;
        }
        const path = v.thread ? `/threads/${encodeURIComponent(v.thread)}/runs/crons` : '/runs/crons';
        const { body: created } = await client.request('POST', path, body);
        const { body: cron } = await client.request<Cron>('GET', `/runs/crons/${created.cron_id}`);
        if (!v.json)
          io.err(
            created.run_id
              ? `created cron ${cron.cron_id}; its first run ${created.run_id} is ${created.status}\n`
              : `created cron ${cron.cron_id}${cron.enabled ? '' : ' (paused)'}\n`,
          );
        print(cron, () => cronFields(cron));
        return EXIT.ok;
      }
      case 'update': {
        const body = cronBody(v, true);
        const onlyFields = Object.keys(RETRY_OPTIONS).some((opt) => v[opt as keyof Values] !== undefined) && v['retry-policy'] === undefined;
        // The --retry-* options change only their fields: the rest of the stored policy is kept.
        const current = onlyFields ? ((await client.request<Cron>('GET', scoped)).body.payload?.retry_policy ?? null) : null;
        const policy = retryPolicy(v, true, current);
        if (policy !== undefined) body.retry_policy = policy;
        if (Object.keys(body).length === 0)
          throw new UsageError('crons update needs something to change (--schedule, --timezone, --input, --metadata, --enabled ...)');
        const { body: cron } = await client.request<Cron>('PATCH', scoped, body);
        print(cron, () => cronFields(cron));
        return EXIT.ok;
      }
      case 'pause':
      case 'resume': {
        const body: Record<string, unknown> = { enabled: command === 'resume' };
        if (v.note !== undefined) body.paused_reason = v.note;
        const { body: cron } = await client.request<Cron>('PATCH', scoped, body);
        if (v.note !== undefined && !('paused_reason' in cron)) io.err('agentcron: this server keeps no pause note; the cron is paused without it\n');
        print(
          cron,
          () =>
            `${command === 'pause' ? 'paused' : 'resumed'} ${cron.cron_id}${cron.next_run_date ? `; next fire ${time(cron.next_run_date)}${cron.enabled ? '' : ' if resumed'}` : ''}`,
        );
        return EXIT.ok;
      }
      case 'trigger': {
        const { body: run } = await client.request('POST', `${scoped}/trigger`);
        print(run, () => `started run ${run.run_id} on thread ${run.thread_id} (${run.status})`);
        return EXIT.ok;
      }
      case 'rm': {
        await client.request('DELETE', scoped);
        print({ deleted: cronId }, () => `deleted ${cronId}`);
        return EXIT.ok;
      }
      case 'next': {
        const q = new URLSearchParams({ count: String(int('count', v.count, 1) ?? 10) });
        if (v.from) q.set('from', v.from);
        const { body } = await client.request('GET', `${own}/next?${q.toString()}`);
        print(body, () => {
          const times = (body.next ?? []) as unknown[];
          const words = body.description ?? describe(body.schedule);
          const title = `${body.schedule} in ${body.timezone}${words ? ` (${words})` : ''}`;
          const paused = body.enabled === false ? 'paused: it fires nothing until resumed' : null;
          if (!times.length) return paused ?? 'no more fire times';
          return `${title}\n${paused ? `${paused}; if resumed now it would fire at:\n` : ''}${timesTable(times)}`;
        });
        return EXIT.ok;
      }
      case 'occurrences': {
        const q = new URLSearchParams({ limit: String(int('limit', v.limit, 1) ?? 20), offset: String(int('offset', v.offset, 0) ?? 0) });
        const { body } = await client.request<Record<string, any>[]>('GET', `${own}/occurrences?${q.toString()}`);
        print(body, () => (body.length ? occurrencesTable(body) : 'no occurrences'));
        return EXIT.ok;
      }
      case 'preview': {
        if (!v.schedule) throw new UsageError("crons preview needs --schedule '<cron expression>'");
        const body: Record<string, unknown> = { schedule: v.schedule };
        if (v.timezone) body.timezone = v.timezone;
        if (v.from) body.from = v.from;
        const count = int('count', v.count, 1);
        if (count !== undefined) body.count = count;
        const jitter = int('jitter', v.jitter, 0);
        if (jitter) body.jitter_seconds = jitter;
        const { body: answer } = await client.request('POST', '/runs/crons/preview', body);
        print(answer, () => {
          const times = (answer?.next ?? answer?.times ?? []) as unknown[];
          const { next: _n, times: _t, ...rest } = answer ?? {};
          return [generic(rest), times.length ? timesTable(times) : 'no fire times'].join('\n');
        });
        return EXIT.ok;
      }
      case 'backfill': {
        if (!v.from || !v.to) throw new UsageError('crons backfill needs --from <ISO time> and --to <ISO time>');
        const { body } = await client.request('POST', `${own}/backfill`, { from: v.from, to: v.to });
        print(body, () => generic(body));
        return EXIT.ok;
      }
      case 'retry': {
        const { body } = await client.request('POST', `${own}/occurrences/${encodeURIComponent(args[1])}/retry`);
        print(body, () =>
          body?.run_id
            ? `retrying ${body.scheduled_for ?? args[1]}: run ${body.run_id} (${body.status})${body.retries ? `, retry ${body.retries}` : ''}`
            : generic(body),
        );
        return EXIT.ok;
      }
    }
    throw new UsageError(`unknown command "crons ${rawCommand}"`);
  } catch (err) {
    // --json: the error as one JSON line on stderr, for scripts (read before parsing could fail).
    const jsonErrors = argv.includes('--json');
    if (err instanceof UsageError) {
      if (jsonErrors) io.err(`${JSON.stringify({ detail: err.message, status: null, exit_code: EXIT.usage })}\n`);
      else io.err(`agentcron: ${err.message}\nrun "agentcron --help" for the commands\n`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      if (jsonErrors) {
        io.err(`${JSON.stringify({ detail: err.message, status: err.status || null, exit_code: EXIT.api })}\n`);
        return EXIT.api;
      }
      io.err(`agentcron: ${err.status ? `HTTP ${err.status}: ` : ''}${err.message}\n`);
      const optional = OPTIONAL_ENDPOINTS[invoked];
      if (optional && (err.status === 405 || (err.status === 404 && /^no route/.test(err.message)))) {
        io.err(`agentcron: this server has no ${optional} (an older agentcron)\n`);
      }
      return EXIT.api;
    }
    throw err;
  }
}
