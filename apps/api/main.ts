// The HTTP API (Procfile `web`). It never runs agents.
import { runProcess, startApiRole } from '../../libs/processes/index.ts';

await runProcess({ service: 'api', roles: [startApiRole], supervise: false });
