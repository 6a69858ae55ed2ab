// The API's answers as the dashboard (static/*.js) reads them, from the server's own schemas:
// JSDoc in the dashboard imports these, so a field renamed on the server fails `npm run typecheck`.
import type { z } from 'zod';
import type { MaintenanceJobSchema } from '../http/schemas/admin.ts';
import type { CronSchema, CronUpdateBody, OccurrenceSchema } from '../http/schemas/crons.ts';

export type Cron = z.output<typeof CronSchema>;
export type CronUpdate = z.input<typeof CronUpdateBody>;
export type Occurrence = z.output<typeof OccurrenceSchema>;
export type MaintenanceJob = z.output<typeof MaintenanceJobSchema>;
