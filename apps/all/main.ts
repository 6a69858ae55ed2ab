// `npm start`: api, scheduler and worker in one process, on the embedded PostgreSQL when
// DATABASE_URL is not set. For trying agentcron out; production runs the Procfile's processes.
// It migrates the database itself (MIGRATE_ON_START unset means true here, false elsewhere).
import { runProcess, startApiRole, startSchedulerRole, startWorkerRole } from '../../libs/processes/index.ts';

await runProcess({
  service: 'agentcron',
  roles: [startApiRole, startSchedulerRole, startWorkerRole],
  supervise: true,
  embeddedFallback: true,
  migrateByDefault: true,
});
