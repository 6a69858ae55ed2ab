import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Router } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../deps.ts';
import { registry } from '../openapi.ts';
import { documentRoutes, json } from '../schemas/common.ts';

// GET /info: LangGraph's server information (what `langgraph dev` and LangGraph Platform answer),
// so tools that probe a deployment find the shape they expect.

const InfoSchema = registry.register(
  'Info',
  z.object({
    version: z.string().describe("agentcron's version."),
    langgraph_js_version: z.string().nullable().describe('The @langchain/langgraph this deployment runs LangGraph graphs with.'),
    context: z.literal('js'),
    flags: z.object({
      assistants: z.boolean(),
      crons: z.boolean(),
      langsmith: z.boolean(),
      langsmith_tracing_replicas: z.boolean(),
    }),
    graphs: z.array(z.string()).describe('The graph ids this deployment runs.'),
  }),
);

documentRoutes('meta', [
  {
    method: 'get',
    path: '/info',
    summary: 'Server information (LangGraph shape): version and flags',
    responses: { 200: json(InfoSchema) },
  },
]);

const require = createRequire(import.meta.url);

function versionOf(packageJson: string): string | null {
  try {
    return (JSON.parse(readFileSync(require.resolve(packageJson), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
const LANGGRAPH_VERSION = versionOf('@langchain/langgraph/package.json');

export function infoRoutes({ agents }: ApiDeps): Router {
  const router = Router();
  router.get('/info', (_req, res) => {
    res.json({
      version: VERSION,
      langgraph_js_version: LANGGRAPH_VERSION,
      context: 'js',
      flags: { assistants: true, crons: true, langsmith: false, langsmith_tracing_replicas: false },
      graphs: agents.graphIds(),
    });
  });
  return router;
}
