#!/usr/bin/env node
// `agentcron`: the crons API and /health from a terminal (libs/cli). `npm run cli -- crons ls`,
// `node apps/cli/main.ts crons ls`, or `npx agentcron crons ls` in this project.
import { main } from '../../libs/cli/index.ts';

const code = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
});
// Let stdout drain (a pipe to `head` or `jq`) before leaving with the code.
process.exitCode = code;
