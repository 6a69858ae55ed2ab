// `agentcron runs ls|get|cancel`: runs of every thread and cron (GET /runs, GET /runs/{run_id}),
// and cancelling one (its thread's cancel route).
import type { ApiClient } from './client.ts';
import { resolveCronId } from './resolve.ts';
import { between, cut, duration, formatFields, formatTable, json, time } from './table.ts';

type Run = Record<string, any>;

/** What `runs <command>` takes: its positional arguments and options (besides the global ones). */
export const RUN_COMMANDS: Record<string, { args: string[]; options: string[] }> = {
  ls: { args: [], options: ['status', 'cron', 'assistant', 'thread', 'since', 'until', 'limit', 'offset', 'user'] },
  get: { args: ['run_id'], options: [] },
  cancel: { args: ['run_id'], options: [] },
};
export const RUN_ALIASES: Record<string, string> = { list: 'ls', show: 'get' };

/** A run's error in one line: `Name: message`. */
function errorLine(error: unknown): string {
  if (!error) return '';
  if (typeof error === 'object' && error !== null && 'error' in error) {
    const e = error as { error?: unknown; message?: unknown };
    return `${json(e.error)}${e.message ? `: ${json(e.message)}` : ''}`;
  }
  return json(error);
}

/** At most 120 columns: the full run id (runs get/cancel take it), then the short facts. */
export function runsTable(runs: Run[]): string {
  return formatTable(
    ['RUN_ID', 'STATUS', 'CREATED', 'DURATION', 'CRON', 'ERROR'],
    runs.map((r) => [
      r.run_id,
      r.status,
      time(r.created_at).slice(0, 16).replace('T', ' '),
      duration(between(r.run_started_at, r.run_ended_at ?? (r.run_started_at ? new Date().toISOString() : null))),
      r.cron_id ? String(r.cron_id).slice(0, 8) : '',
      cut(errorLine(r.error), 30),
    ]),
    40,
  );
}

export function runFields(r: Run): string {
  const fields: [string, unknown][] = [
    ['run_id', r.run_id],
    ['status', r.status],
    ['thread_id', r.thread_id],
    ['assistant_id', r.assistant_id],
    ['cron_id', r.cron_id ?? undefined],
    ['scheduled_for', r.scheduled_for ? time(r.scheduled_for) : undefined],
    ['owner', r.user_id ?? undefined],
    ['created_at', time(r.created_at)],
    ['started_at', time(r.run_started_at)],
    ['ended_at', time(r.run_ended_at)],
    ['queue_wait', duration(between(r.created_at, r.run_started_at))],
    ['duration', duration(between(r.run_started_at, r.run_ended_at))],
  ];
  // Fields a newer server adds to every run (attempts, waiting ...), shown as they come.
  for (const k of ['attempts', 'waiting', 'not_before']) if (r[k] !== undefined && r[k] !== null) fields.push([k, json(r[k])]);
  fields.push(['error', r.error ? errorLine(r.error) : undefined]);
  fields.push(['input', json(r.kwargs?.input) || null]);
  fields.push(['output', r.output === undefined ? undefined : JSON.stringify(r.output, null, 2)]);
  return formatFields(fields);
}

/** Runs `runs <command>`; answers what to print (the API's JSON, and the text for people). */
export async function runRunsCommand(
  client: ApiClient,
  command: string,
  args: string[],
  v: {
    status?: string;
    cron?: string;
    assistant?: string;
    thread?: string;
    since?: string;
    until?: string;
    limit?: number;
    offset?: number;
    user?: string;
    admin?: boolean;
  },
): Promise<{ body: unknown; text: () => string }> {
  switch (command) {
    case 'ls': {
      const q = new URLSearchParams({ limit: String(v.limit ?? 50), offset: String(v.offset ?? 0) });
      if (v.status) q.set('status', v.status);
      if (v.cron) q.set('cron_id', await resolveCronId(client, v.cron, Boolean(v.admin)));
      if (v.assistant) q.set('assistant_id', v.assistant);
      if (v.thread) q.set('thread_id', v.thread);
      if (v.since) q.set('created_after', v.since);
      if (v.until) q.set('created_before', v.until);
      if (v.user) q.set('user_id', v.user);
      const { body } = await client.request<Run[]>('GET', `/runs?${q.toString()}`);
      return { body, text: () => (body.length ? runsTable(body) : 'no runs') };
    }
    case 'get': {
      const { body } = await client.request<Run>('GET', `/runs/${encodeURIComponent(args[0])}`);
      return { body, text: () => runFields(body) };
    }
    case 'cancel': {
      const { body: run } = await client.request<Run>('GET', `/runs/${encodeURIComponent(args[0])}`);
      await client.request('POST', `/threads/${run.thread_id}/runs/${run.run_id}/cancel`);
      // A stateless run's thread (and the run with it) is deleted once it has ended.
      const after = await client.request<Run>('GET', `/runs/${run.run_id}`).then(
        (a) => a.body,
        (err) => {
          if ((err as { status?: number }).status === 404) return null;
          throw err;
        },
      );
      const body = after ?? { run_id: run.run_id, status: 'interrupted', deleted: true };
      return { body, text: () => `cancelled ${run.run_id} (${after ? after.status : 'interrupted; its ephemeral thread and the run were deleted'})` };
    }
  }
  throw new Error(`unknown runs command ${command}`);
}
