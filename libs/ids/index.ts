import { hash } from 'node:crypto';

const namespaces = new Map<string, Buffer>();

/**
 * RFC 4122 version-5 UUID (SHA-1 of namespace + name). Two per occurrence fired (its run and its
 * thread): the namespace's bytes are kept and hashed with the name in one call (crypto.hash).
 */
export function uuidv5(name: string, namespace: string): string {
  let ns = namespaces.get(namespace);
  if (!ns) {
    ns = Buffer.from(namespace.replaceAll('-', ''), 'hex');
    namespaces.set(namespace, ns);
  }
  const bytes = Buffer.allocUnsafe(16 + Buffer.byteLength(name, 'utf8'));
  ns.copy(bytes, 0);
  bytes.write(name, 16, 'utf8');
  const h = hash('sha1', bytes, 'buffer');
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.toString('hex', 0, 16);
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
