import { createHash } from 'node:crypto';

/** RFC 4122 version-5 UUID (SHA-1 of namespace + name). */
export function uuidv5(name: string, namespace: string): string {
  const ns = Buffer.from(namespace.replaceAll('-', ''), 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The namespace LangGraph uses for a graph's default assistant id (RFC 4122's URL namespace). */
export const GRAPH_ASSISTANT_NAMESPACE = '6ba7b821-9dad-11d1-80b4-00c04fd430c8';

// agentcron's own namespace for ids derived from an occurrence.
const OCCURRENCE_NAMESPACE = 'a6c1c2a4-3f0e-5d2b-9d64-6167656e7463';

/**
 * The run id of a cron occurrence: deterministic, so a repeated attempt to fire the same
 * occurrence produces the same run (and the same pg-boss job id) and collides instead of duplicating.
 */
export function occurrenceRunId(cronId: string, scheduledFor: Date): string {
  return uuidv5(`${cronId}@${scheduledFor.toISOString()}`, OCCURRENCE_NAMESPACE);
}

/** The ephemeral thread of a stateless cron's occurrence. */
export function occurrenceThreadId(cronId: string, scheduledFor: Date): string {
  return uuidv5(`${cronId}@${scheduledFor.toISOString()}#thread`, OCCURRENCE_NAMESPACE);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string): boolean => UUID_RE.test(s);
