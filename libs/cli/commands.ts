// `agentcron` (apps/cli/main.ts): the crons API and /health from a terminal, over the public HTTP
// API only, so a key sees from here exactly what it sees anywhere else. Tables for people,
// --json for scripts. Exit codes: 0 done, 1 the API refused or could not be reached (its
// `detail` is printed), 2 the command line is wrong.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ApiClient, ApiError } from './client.ts';
import { RUN_ALIASES, RUN_COMMANDS, runRunsCommand } from './runs.ts';
import type { Io } from './spec.ts';
import { ALIASES, COMMANDS, EXIT, GLOBAL, OPTIONAL_ENDPOINTS, USAGE, UsageError, parse } from './spec.ts';
import { int } from './args.ts';
import { generic } from './format.ts';
import { runCronsCommand } from './crons.ts';

// What this module exported before the split into spec, args, format and crons.
export { EXIT, USAGE, UsageError } from './spec.ts';
export type { Io, Values } from './spec.ts';
export { int } from './args.ts';
export { waitingText } from './format.ts';

/** Runs `agentcron keys ...`: the database-side key tool (apps/keys), with this process's streams. */
function runKeys(args: string[], io: Io): Promise<number> {
  const script = fileURLToPath(new URL('../../apps/keys/main.ts', import.meta.url));
  return new Promise((resolve) => {
    // The type-stripping hooks, for an installed package (its files under node_modules: apps/cli/ts-hooks.mjs).
    const hooks = new URL('../../apps/cli/ts-hooks.mjs', import.meta.url).href;
    const child = spawn(process.execPath, ['--import', hooks, script, ...args], { stdio: 'inherit', env: io.env });
    child.on('exit', (code) => resolve(code ?? EXIT.api));
    child.on('error', (err) => {
      io.err(`agentcron keys: ${err.message}\n`);
      resolve(EXIT.api);
    });
  });
}

/** The whole CLI: answers the exit code (never calls process.exit). */
export async function main(argv: string[], io: Io): Promise<number> {
  if (argv[0] === 'keys') return runKeys(argv.slice(1), io);
  /** The crons command being run, for the hint on an endpoint this server lacks. */
  let invoked = '';
  try {
    const { values: v, positionals } = parse(argv);
    const [group, rawCommand, ...args] = positionals;
    if (v.help || group === 'help' || (!group && argv.length === 0)) {
      const asked = v.help || group === 'help';
      if (asked) io.out(`${USAGE}\n`);
      else io.err(`${USAGE}\n`);
      return asked ? EXIT.ok : EXIT.usage;
    }
    const url = v.url ?? io.env.AGENTCRON_URL ?? 'http://localhost:8000';
    const key = v['api-key'] ?? io.env.AGENTCRON_API_KEY ?? null;
    try {
      new URL(url);
    } catch {
      throw new UsageError(`--url / AGENTCRON_URL is not a URL: "${url}"`);
    }
    const client = new ApiClient(url, key || null);
    const given = Object.keys(v).filter((k) => !GLOBAL.includes(k));

    if (group === 'health') {
      if (rawCommand !== undefined) throw new UsageError(`health takes no argument (got "${rawCommand}")`);
      if (given.length) throw new UsageError(`health takes no option --${given[0]}`);
      const answer = await client.request('GET', '/health', undefined, { allowStatus: [503] });
      if (v.json) io.out(`${JSON.stringify(answer.body, null, 2)}\n`);
      else io.out(`${generic(answer.body)}\n`);
      if (answer.status !== 200) {
        io.err(`agentcron: the API is unhealthy (HTTP ${answer.status})\n`);
        return EXIT.api;
      }
      return EXIT.ok;
    }
    if (group === 'runs') {
      if (!rawCommand) throw new UsageError('runs needs a command: ls, get, cancel');
      const command = RUN_ALIASES[rawCommand] ?? rawCommand;
      const spec = RUN_COMMANDS[command];
      if (!spec) throw new UsageError(`unknown command "runs ${rawCommand}"`);
      const wrong = given.filter((k) => !spec.options.includes(k));
      if (wrong.length) throw new UsageError(`runs ${rawCommand} takes no option --${wrong[0]}`);
      if (args.length < spec.args.length) throw new UsageError(`runs ${rawCommand} needs <${spec.args.slice(args.length).join('> <')}>`);
      if (args.length > spec.args.length) throw new UsageError(`runs ${rawCommand}: unexpected argument "${args[spec.args.length]}"`);
      if (v.user !== undefined && !v.admin) throw new UsageError("--user is for --admin (an admin key listing every user's runs)");
      const done = await runRunsCommand(client, command, args, { ...v, limit: int('limit', v.limit, 1), offset: int('offset', v.offset, 0) });
      io.out(`${v.json ? JSON.stringify(done.body, null, 2) : done.text()}\n`);
      return EXIT.ok;
    }
    if (group !== 'crons') throw new UsageError(group ? `unknown command "${group}"` : 'no command');
    if (!rawCommand)
      throw new UsageError('crons needs a command: ls, get, create, update, pause, resume, trigger, rm, next, occurrences, preview, backfill, retry');
    const command = ALIASES[rawCommand] ?? rawCommand;
    const spec = COMMANDS[command];
    invoked = command;
    if (!spec) throw new UsageError(`unknown command "crons ${rawCommand}"`);
    const wrong = given.filter((k) => !spec.options.includes(k));
    if (wrong.length) throw new UsageError(`crons ${rawCommand} takes no option --${wrong[0]}`);
    if (args.length < spec.args.length) throw new UsageError(`crons ${rawCommand} needs <${spec.args.slice(args.length).join('> <')}>`);
    if (args.length > spec.args.length) throw new UsageError(`crons ${rawCommand}: unexpected argument "${args[spec.args.length]}"`);
    if (v.user !== undefined && !v.admin) throw new UsageError("--user is for --admin (an admin key listing every user's crons)");

    return await runCronsCommand(client, command, rawCommand, args, v, io);
  } catch (err) {
    // --json: the error as one JSON line on stderr, for scripts (read before parsing could fail).
    const jsonErrors = argv.includes('--json');
    if (err instanceof UsageError) {
      if (jsonErrors) io.err(`${JSON.stringify({ detail: err.message, status: null, exit_code: EXIT.usage })}\n`);
      else io.err(`agentcron: ${err.message}\nrun "agentcron --help" for the commands\n`);
      return EXIT.usage;
    }
    if (err instanceof ApiError) {
      if (jsonErrors) {
        io.err(`${JSON.stringify({ detail: err.message, status: err.status || null, exit_code: EXIT.api })}\n`);
        return EXIT.api;
      }
      io.err(`agentcron: ${err.status ? `HTTP ${err.status}: ` : ''}${err.message}\n`);
      const optional = OPTIONAL_ENDPOINTS[invoked];
      if (optional && (err.status === 405 || (err.status === 404 && /^no route/.test(err.message)))) {
        io.err(`agentcron: this server has no ${optional} (an older agentcron)\n`);
      }
      return EXIT.api;
    }
    throw err;
  }
}
