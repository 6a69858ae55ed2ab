import { z } from 'zod';
import {} from '../errors.ts';

// What the runs routes, their docs and their helpers share: path shapes, the join's limit.

/**
 * How long a join waits before answering 408 (join again): under undici's 300 s headers
 * timeout, so a fetch-based client gets an answer rather than a dropped connection.
 */
export const JOIN_MAX_WAIT_MS = 240_000;

export const ThreadParams = z.object({ thread_id: z.uuid() });
export const RunParams = z.object({ thread_id: z.uuid(), run_id: z.uuid() });
