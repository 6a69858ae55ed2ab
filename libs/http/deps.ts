import type { AgentRegistry } from '../agents/index.ts';
import type { Config } from '../config/index.ts';
import type { Pool } from '../db/index.ts';
import type { Logger } from '../log/index.ts';
import type { PgBoss } from '../queue/index.ts';

/** What the API's routes are built from. */
export interface ApiDeps {
  pool: Pool;
  boss: PgBoss;
  config: Config;
  logger: Logger;
  agents: AgentRegistry;
}
