import { ApiClient } from './client.ts';
import { resolveCronId } from './resolve.ts';
import { time } from './table.ts';
import type { Values, Io } from './spec.ts';
import { COMMANDS, EXIT, RETRY_OPTIONS, UsageError } from './spec.ts';
import { bool, cronBody, int, metadataFilter, retryPolicy } from './args.ts';
import { cronFields, cronsNarrowTable, cronsTable, describe, generic, occurrencesTable, timesTable } from './format.ts';
import type { Cron } from './format.ts';

// `agentcron crons ...`: each crons command as API requests and its output.

/** Runs a crons command whose command line main has checked; answers the exit code. */
export async function runCronsCommand(client: ApiClient, command: string, rawCommand: string, args: string[], v: Values, io: Io): Promise<number> {
  const spec = COMMANDS[command];
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
          ? `\nshowing ${crons.length ? `${offset + 1}-${offset + crons.length}` : 'none'} of ${total} crons; --offset ${offset + crons.length} ` +
            `for the next ones (--limit up to 1000)`
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
          `${command === 'pause' ? 'paused' : 'resumed'} ` +
          `${cron.cron_id}${cron.next_run_date ? `; next fire ${time(cron.next_run_date)}${cron.enabled ? '' : ' if resumed'}` : ''}`,
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
}
