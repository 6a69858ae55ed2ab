import type { Router } from 'express';
import type { ApiDeps } from '../deps.ts';
// First: the crons paths open the OpenAPI document, as they did when their schemas module registered them.
import './cron-docs.ts';
import { adminRoutes } from './admin.ts';
import { assistantsRoutes } from './assistants.ts';
import { cronsRoutes } from './crons.ts';
import { infoRoutes } from './info.ts';
import { runsRoutes } from './runs.ts';
import { runListRoutes } from './run-list.ts';
import { statsRoutes } from './stats.ts';
import { threadsRoutes } from './threads.ts';

/** Every resource router of the API, in mount order. */
export function apiRoutes(deps: ApiDeps): Router[] {
  return [
    cronsRoutes(deps),
    threadsRoutes(deps),
    runsRoutes(deps),
    assistantsRoutes(deps),
    adminRoutes(deps),
    infoRoutes(deps),
    statsRoutes(deps),
    runListRoutes(deps),
  ];
}
