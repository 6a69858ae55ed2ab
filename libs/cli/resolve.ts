// A cron as a person names it on the command line: its id, its name (metadata.name) or a unique
// prefix of its id of 8 or more characters (what the dashboard shows), resolved to its id through
// the API's search, so a key finds only what it may see.
import { ApiError } from './client.ts';
import type { ApiClient } from './client.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ID_PREFIX = /^(?=(?:[0-9a-f]-?){8})[0-9a-f-]{8,36}$/i;

/** The cron id `ref` names; ApiError 404 when nothing matches, 409 when several do. */
export async function resolveCronId(client: ApiClient, ref: string, admin: boolean): Promise<string> {
  if (UUID.test(ref)) return ref;
  const search = admin ? '/admin/crons/search' : '/runs/crons/search';
  const fields = ['cron_id', 'metadata', 'user_id'];
  const { body: named } = await client.request<{ cron_id: string; user_id?: string }[]>('POST', search, { metadata: { name: ref }, limit: 10, select: fields });
  if (named.length === 1) return named[0].cron_id;
  if (named.length > 1) {
    const which = named.map((c) => (admin && c.user_id ? `${c.cron_id} (${c.user_id})` : c.cron_id)).join(', ');
    throw new ApiError(409, `${named.length} crons are named ${JSON.stringify(ref)}: ${which}; give the id`);
  }
  if (ID_PREFIX.test(ref)) {
    const hex = ref.replace(/-/g, '').toLowerCase();
    const { body } = await client.request<{ cron_id: string }[]>('POST', search, { cron_id_prefix: ref, limit: 10, select: fields });
    // Checked here too: a server without cron_id_prefix ignores it and answers unfiltered crons.
    const matches = body.filter((c) => c.cron_id.replace(/-/g, '').startsWith(hex));
    if (matches.length === 1) return matches[0].cron_id;
    if (matches.length > 1)
      throw new ApiError(409, `${matches.length} crons have ids starting with ${ref}: ${matches.map((c) => c.cron_id).join(', ')}; give more of the id`);
    throw new ApiError(404, `Cron not found: no cron is named ${JSON.stringify(ref)} or has an id starting with ${ref}`);
  }
  throw new ApiError(404, `Cron not found: no cron is named ${JSON.stringify(ref)} (give a name, an id, or 8+ characters of an id)`);
}
