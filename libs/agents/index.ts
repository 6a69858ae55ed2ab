export { AgentRegistry, builtinAgents, echo } from './agents.ts';
export type { Agent, AgentContext } from './agents.ts';
