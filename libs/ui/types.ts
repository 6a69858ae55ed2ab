// The API's answers as the dashboard (static/*.js) reads them, from the server's own schemas:
// JSDoc in the dashboard imports these, so a field renamed on the server fails `npm run typecheck`.
import type { z } from 'zod';
import type { MaintenanceJobSchema } from '../http/schemas/admin.ts';
import type { AssistantSchema } from '../http/schemas/assistants.ts';
import type { ListedRunSchema, RunDetailSchema } from '../http/routes/run-list.ts';
import type { RetryPolicySchema } from '../http/schemas/common.ts';
import type { BackfillBody, CronCreateBody, CronUpdateBody } from '../http/schemas/crons.ts';
import type {
  BackfillSchema,
  CronRunSchema,
  CronSchema,
  FireTimeSchema,
  NextRunsSchema,
  OccurrenceSchema,
  PreviewSchema,
  RetrySchema,
} from '../http/schemas/cron-answers.ts';

export type Cron = z.output<typeof CronSchema>;
export type CronUpdate = z.input<typeof CronUpdateBody>;
export type Occurrence = z.output<typeof OccurrenceSchema>;
export type MaintenanceJob = z.output<typeof MaintenanceJobSchema>;
export type CronCreate = z.input<typeof CronCreateBody>;
export type FireTime = z.output<typeof FireTimeSchema>;
export type NextRuns = z.output<typeof NextRunsSchema>;
export type CronRun = z.output<typeof CronRunSchema>;
export type RetryRun = z.output<typeof RetrySchema>;
export type Backfill = z.input<typeof BackfillBody>;
export type BackfillResult = z.output<typeof BackfillSchema>;
export type RetryPolicy = z.output<typeof RetryPolicySchema>;
export type Preview = z.output<typeof PreviewSchema>;
export type Assistant = z.output<typeof AssistantSchema>;
export type ListedRun = z.output<typeof ListedRunSchema>;
export type RunDetail = z.output<typeof RunDetailSchema>;
