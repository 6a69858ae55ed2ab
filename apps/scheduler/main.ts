// Turns due cron occurrences into runs enqueued in pg-boss. Any number may run.
import { runProcess, startSchedulerRole } from '../../libs/processes/index.ts';

await runProcess({ service: 'scheduler', roles: [startSchedulerRole], supervise: false });
