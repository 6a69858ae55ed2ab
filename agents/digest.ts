import type { Agent } from '../libs/agents/index.ts';

// The smallest plain-function agent (README, "Agents"): it keeps the last few inputs it was given
// on its thread and says which occurrence it ran for. A real one would call a model here; it gets
// an abort signal to pass on and an idempotency key to de-duplicate side effects with.
export const run: Agent = async (input, ctx) => {
  const earlier: unknown[] = Array.isArray(ctx.values?.inputs) ? (ctx.values.inputs as unknown[]) : [];
  return {
    inputs: [...earlier, input].slice(-10),
    last: { idempotency_key: ctx.idempotency_key, cron_id: ctx.cron_id, scheduled_for: ctx.scheduled_for },
  };
};
