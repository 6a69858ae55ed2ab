// What agentcron.json says about flow control (docs/flow-control.md): deployment-wide limits by
// name, and for each graph the limits it is subject to and its retry policy. Limits are checked
// here (one line naming the limit or graph at fault, at startup); a graph's retry_policy is kept
// as written and checked by the process that loads it (libs/runs/retry-policy.ts).
//
//   "limits": {"openai": {"max_concurrency": 20, "rate": {"runs": 500, "per_seconds": 60}}},
//   "graphs": {"digest": {"path": "./agents/digest.ts:graph", "limits": ["openai"], "retry_policy": {...}}}

export interface LimitSpec {
  name: string;
  /** Runs of the limit executing at once, across all workers; null: no bound. */
  max_concurrency: number | null;
  /** At most `runs` starts in any `per_seconds`; null: no rate. */
  rate: { runs: number; per_seconds: number } | null;
}

export interface GraphFlow {
  /** Names of the limits this graph's runs are subject to. */
  limits: string[];
  /** The graph's retry policy as written (null: none). */
  retry_policy: unknown;
}

export interface FlowConfig {
  limits: Map<string, LimitSpec>;
  graphs: Map<string, GraphFlow>;
}

export const emptyFlowConfig = (): FlowConfig => ({ limits: new Map(), graphs: new Map() });

/** An assistant's own config.max_concurrency is a limit of this name. */
export const assistantLimitName = (assistantId: string): string => `assistant:${assistantId}`;

const MAX_CONCURRENCY = 100_000;
const MAX_RATE_SECONDS = 86_400;

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown, max: number): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= max;

/** Reads `limits` and each graph's `limits` / `retry_policy` from a parsed config document; `fail` throws one line. */
export function parseFlowConfig(doc: Record<string, unknown>, fail: (message: string, graphId?: string) => never): FlowConfig {
  const flow = emptyFlowConfig();
  if (doc.limits !== undefined) {
    if (!isObject(doc.limits)) fail('"limits" must be an object mapping limit names to {"max_concurrency": n, "rate": {"runs": n, "per_seconds": s}}');
    for (const [name, raw] of Object.entries(doc.limits)) {
      const bad = (rule: string): never => fail(`limit "${name}": ${rule}`);
      if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) bad('a name is 1-100 letters, digits, "_", "." or "-"');
      if (!isObject(raw)) bad('must be an object with max_concurrency and/or rate');
      const spec = raw as Record<string, unknown>;
      for (const key of Object.keys(spec)) if (key !== 'max_concurrency' && key !== 'rate') bad(`unknown field "${key}" (allowed: max_concurrency, rate)`);
      let max: number | null = null;
      if (spec.max_concurrency !== undefined) {
        if (!isCount(spec.max_concurrency, MAX_CONCURRENCY))
          bad(`max_concurrency must be an integer from 1 to ${MAX_CONCURRENCY} (got ${JSON.stringify(spec.max_concurrency)})`);
        max = spec.max_concurrency as number;
      }
      let rate: LimitSpec['rate'] = null;
      if (spec.rate !== undefined) {
        const r = spec.rate;
        if (!isObject(r) || Object.keys(r).some((k) => k !== 'runs' && k !== 'per_seconds')) bad('rate must be {"runs": n, "per_seconds": s}');
        const { runs, per_seconds } = r as Record<string, unknown>;
        if (!isCount(runs, MAX_CONCURRENCY)) bad(`rate.runs must be an integer from 1 to ${MAX_CONCURRENCY} (got ${JSON.stringify(runs)})`);
        if (!isCount(per_seconds, MAX_RATE_SECONDS))
          bad(`rate.per_seconds must be an integer from 1 to ${MAX_RATE_SECONDS} (got ${JSON.stringify(per_seconds)})`);
        rate = { runs: runs as number, per_seconds: per_seconds as number };
      }
      if (max === null && rate === null) bad('sets neither max_concurrency nor rate');
      flow.limits.set(name, { name, max_concurrency: max, rate });
    }
  }
  for (const [graphId, entry] of Object.entries(isObject(doc.graphs) ? doc.graphs : {})) {
    if (!isObject(entry)) continue;
    const limits = entry.limits ?? [];
    if (!Array.isArray(limits) || limits.some((l) => typeof l !== 'string')) fail(`graph "${graphId}": limits must be a list of limit names`, graphId);
    for (const name of limits as string[]) {
      if (!flow.limits.has(name)) {
        const known = [...flow.limits.keys()];
        fail(
          `graph "${graphId}" names limit "${name}", which "limits" does not define (${known.length ? `defined: ${known.join(', ')}` : 'none is defined'})`,
          graphId,
        );
      }
    }
    const retryPolicy = entry.retry_policy ?? null;
    if ((limits as string[]).length || retryPolicy !== null)
      flow.graphs.set(graphId, { limits: [...new Set(limits as string[])].sort(), retry_policy: retryPolicy });
  }
  return flow;
}
