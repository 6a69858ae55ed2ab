// The API's answers as the dashboard (static/*.js) reads them, from the server's own schemas:
// JSDoc in the dashboard imports these, so a field renamed on the server fails `npm run typecheck`.
import type { z } from 'zod';
import type { MaintenanceJobSchema } from '../http/schemas/admin.ts';
import type { AssistantSchema } from '../http/schemas/assistants.ts';
import type { ListedRunSchema, RunDetailSchema } from '../http/routes/run-list.ts';
import type { RunSchema } from '../http/schemas/runs.ts';
import type { ThreadSchema } from '../http/schemas/threads.ts';
import type { CronCreateBody, CronSchema, CronUpdateBody, FireTimeSchema, OccurrenceSchema, PreviewSchema } from '../http/schemas/crons.ts';

export type Cron = z.output<typeof CronSchema>;
export type CronUpdate = z.input<typeof CronUpdateBody>;
export type Occurrence = z.output<typeof OccurrenceSchema>;
export type MaintenanceJob = z.output<typeof MaintenanceJobSchema>;
export type CronCreate = z.input<typeof CronCreateBody>;
export type FireTime = z.output<typeof FireTimeSchema>;
export type Preview = z.output<typeof PreviewSchema>;
export type Assistant = z.output<typeof AssistantSchema>;
export type Run = z.output<typeof RunSchema>;
export type Thread = z.output<typeof ThreadSchema>;
export type ListedRun = z.output<typeof ListedRunSchema>;
export type RunDetail = z.output<typeof RunDetailSchema>;
