// Executes agent runs from pg-boss. Scales horizontally.
import { runProcess, startWorkerRole } from '../../libs/processes/index.ts';

await runProcess({ service: 'worker', roles: [startWorkerRole], supervise: true });
