import { OpenAPIRegistry, OpenApiGeneratorV31, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { withExamples } from './examples.ts';

// zod schemas are the single source of truth: routes validate with them and register them here,
// and GET /openapi.json is generated from this registry.
extendZodWithOpenApi(z);

export const registry = new OpenAPIRegistry();

export function openApiDocument(): object {
  const doc = new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'agentcron',
      version: '0.1.0',
      description: 'Crons that run agents, with a LangGraph-SDK-compatible API.',
    },
  });
  // Request and answer examples (libs/http/examples.ts), shown by /docs.
  return withExamples(doc);
}
