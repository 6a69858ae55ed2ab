import { defaultAssistantId } from '../assistants/index.ts';
import type { PoolClient } from '../db/index.ts';
import { isUuid } from '../ids/index.ts';
import { canonicalZoneName, parseSchedule, ScheduleError, splitTimezonePrefix } from '../schedule/index.ts';
import type { Schedule } from '../schedule/index.ts';
import { cronNameOf, lockCronName } from './names.ts';
import { conflict, invalid } from '../refusal/index.ts';
import { PAYLOAD_KEYS } from './types.ts';
import type { CronPayload } from './types.ts';

// The crons' reading of what a request gives: schedule and timezone, name, pause note, payload
// and assistant, each refused (refusal.ts) naming the field.

/** A validated schedule, or a refusal naming the field (schedule or timezone) with the parser's reason. */
export function scheduleOf(expression: string, timezone: string | null, allowSeconds: boolean): Schedule {
  try {
    return parseSchedule(expression, { timezone, allowSeconds });
  } catch (err) {
    if (err instanceof ScheduleError) throw invalid(err.field, err.message);
    throw err;
  }
}

/**
 * A timezone as stored: the canonical IANA name of what was typed (`utc` -> `UTC`,
 * `europe/paris` -> `Europe/Paris`, `US/Eastern` -> `America/New_York`), so a cron shows, filters
 * and compares by one spelling. An unknown name is answered as typed (validation names it).
 */
export function canonicalTimezone(tz: string | null): string | null {
  return tz === null ? null : canonicalZoneName(tz);
}

/**
 * A request's schedule and timezone, with a `CRON_TZ=<zone> ` or `TZ=<zone> ` prefix on the
 * schedule read as its timezone (the way SDK 2.x, which sends no `timezone`, can name one): the
 * bare expression is stored with the zone. A prefix and a different timezone field are refused.
 * A timezone left out (undefined) or null stays so when there is no prefix.
 */
export function zonedSchedule<T extends string | null | undefined>(schedule: string, timezone: T): { schedule: string; timezone: T | string } {
  let split;
  try {
    split = splitTimezonePrefix(schedule);
  } catch (err) {
    if (err instanceof ScheduleError) throw invalid(err.field, err.message);
    throw err;
  }
  if (split.timezone === null) return { schedule, timezone };
  if (timezone != null && canonicalTimezone(timezone) !== canonicalTimezone(split.timezone)) {
    throw invalid(
      'schedule',
      `its prefix names the time zone ${split.timezone} but timezone is ${JSON.stringify(timezone)}: give the zone once (the prefix, or the timezone field)`,
    );
  }
  return { schedule: split.expression, timezone: split.timezone };
}

/** The cron name in a body's metadata (metadata.name), validated; null for none, undefined when metadata is not sent. */
export function nameOf(metadata: Record<string, unknown> | null | undefined): string | null | undefined {
  if (metadata == null) return metadata === null ? null : undefined;
  const named = cronNameOf(metadata);
  if ('invalid' in named) throw invalid('metadata.name', named.invalid);
  return named.name;
}

/** A conflict unless no other cron of the owner bears this name (takes the name's lock: see names.ts). */
export async function claimName(client: PoolClient, userId: string, name: string | null | undefined, cronId: string | null): Promise<void> {
  if (name == null) return;
  const other = await lockCronName(client, userId, name, cronId);
  if (other !== null) throw conflict(`body.metadata.name: you already have a cron named ${JSON.stringify(name)} (${other}); names are unique per owner`);
}

/** An assistant id as given, or a graph id standing for that graph's default assistant. */
export const assistantKey = (idOrGraph: string): string => (isUuid(idOrGraph) ? idOrGraph : defaultAssistantId(idOrGraph));

/** The run-body fields of a request, without the ones left out (undefined) or sent as null. */
export function payloadOf(body: Record<string, unknown>): CronPayload {
  const payload: Record<string, unknown> = {};
  for (const key of PAYLOAD_KEYS) if (body[key] !== undefined && body[key] !== null) payload[key] = body[key];
  return payload;
}

/**
 * The pause note a cron keeps: the one given (an empty one is none), for a disabled cron only. A
 * cron that is (or becomes) enabled has none: enabling clears it, and giving one with it is refused.
 */
export function pauseNote(given: string | null | undefined, enabled: boolean, stored: string | null = null): string | null {
  const note = given === undefined ? stored : given === null || given.trim() === '' ? null : given;
  if (!enabled) return note;
  if (given != null && given.trim() !== '') {
    throw invalid('paused_reason', 'only a disabled cron has a pause note: send it with "enabled": false (enabling clears it)');
  }
  return null;
}
