// The agent of the bench's limited herd (bench/main.ts, section 4): the built-in echo under a
// graph of its own, so agentcron.json can put it under a limit.
export { echo } from '../libs/agents/index.ts';
