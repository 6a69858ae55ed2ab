import { parseArgs } from 'node:util';

// The CLI's command line: usage text, options, commands and their arguments, exit codes.

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

export const OPTIONS = {
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

export const GLOBAL = ['url', 'api-key', 'json', 'admin', 'help'];
/** The --retry-* options and the retry_policy field each sets. */
export const RETRY_OPTIONS = {
  'retry-max-attempts': 'max_attempts',
  'retry-initial-interval': 'initial_interval_seconds',
  'retry-backoff': 'backoff_coefficient',
  'retry-max-interval': 'maximum_interval_seconds',
} as const;
export const CRON_FIELDS = [
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
export const COMMANDS: Record<string, { args: string[]; options: string[] }> = {
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
export const ALIASES: Record<string, string> = { list: 'ls', show: 'get', delete: 'rm', remove: 'rm' };
/** Endpoints newer than the crons API itself: a server without them is told apart from a refusal. */
export const OPTIONAL_ENDPOINTS: Record<string, string> = {
  preview: 'POST /runs/crons/preview',
  backfill: 'POST /runs/crons/{cron_id}/backfill',
  retry: 'POST /runs/crons/{cron_id}/occurrences/{scheduled_for}/retry',
};

/** A wrong command line: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {}

export function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
