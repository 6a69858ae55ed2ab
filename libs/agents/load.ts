import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AgentRegistry, builtinAgents } from './agents.ts';
import type { Agent } from './agents.ts';
import { checkpointedGraph, describeLangGraph, isCompiledGraph, isGraphBuilder, keepsState, langGraphAgent } from './langgraph.ts';
import type { CompiledGraph } from './langgraph.ts';
import { parseFlowConfig } from './flow.ts';
import type { FlowConfig } from './flow.ts';
import { remoteAgent } from './remote.ts';
import type { RemoteAgentSpec } from './remote.ts';

// The graph registry: a config file maps graph ids to code, as langgraph.json does:
//   {"graphs": {"digest": "./agents/digest.ts:graph", "remote_x": {"url": "https://...", "timeout_s": 30, "headers": {...}}}}
// Paths are relative to the config file. Every problem is reported in one line naming the graph,
// so a bad deploy stops at startup instead of failing each run.

export const CONFIG_FILE_NAMES = ['agentcron.json', 'langgraph.json'];

export type AgentKind = 'builtin' | 'function' | 'langgraph' | 'remote';

/** A graph in a module; pathWritten is the path as the config file writes it, for messages. */
export type ModuleGraphSpec = { kind: 'module'; file: string; exportName: string; pathWritten: string };
export type GraphSpec = ModuleGraphSpec | ({ kind: 'remote' } & RemoteAgentSpec);

export class AgentConfigError extends Error {
  override name = 'AgentConfigError';
  /** The graph at fault; null for a problem with the file itself. */
  readonly graphId: string | null;
  constructor(message: string, graphId: string | null = null) {
    super(message);
    this.graphId = graphId;
  }
}

export interface LoadedAgents {
  registry: AgentRegistry;
  /** The config file read; null when there is none (built-in graphs only). */
  configFile: string | null;
  kinds: Record<string, AgentKind>;
  /** Gives every LangGraph graph that keeps state the process's checkpointer. */
  useCheckpointer(checkpointer: unknown): void;
}

/**
 * The config file to read: AGENTCRON_CONFIG when set (it must exist), else agentcron.json or
 * langgraph.json in the working directory, else none.
 */
export function findConfigFile(explicit: string | undefined, cwd: string): string | null {
  if (explicit) {
    const file = path.resolve(cwd, explicit);
    if (!existsSync(file)) throw new AgentConfigError(`AGENTCRON_CONFIG names ${explicit}, which does not exist`);
    return file;
  }
  for (const name of CONFIG_FILE_NAMES) {
    const file = path.join(cwd, name);
    if (existsSync(file)) return file;
  }
  return null;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Parses a config file's text into one spec per graph (no code is loaded). */
export function parseConfigFile(file: string, text: string, env: NodeJS.ProcessEnv = process.env): Map<string, GraphSpec> {
  return parseConfig(file, text, env).specs;
}

/** A config file's graphs and its flow settings (limits; each graph's limits and retry policy). */
export function parseConfig(file: string, text: string, env: NodeJS.ProcessEnv = process.env): { specs: Map<string, GraphSpec>; flow: FlowConfig } {
  const shown = path.basename(file);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new AgentConfigError(`${shown} is not valid JSON: ${firstLine(err)}`);
  }
  if (!isObject(doc) || !isObject(doc.graphs)) throw new AgentConfigError(`${shown}: "graphs" must be an object mapping graph ids to agents`);
  const specs = new Map<string, GraphSpec>();
  // Limits first: a graph naming an unknown limit is one line at startup, like any bad graph.
  const flow = parseFlowConfig(doc, (message, graphId) => {
    throw new AgentConfigError(`${shown}: ${message}`, graphId ?? null);
  });
  for (const [graphId, entry] of Object.entries(doc.graphs)) {
    if (graphId.trim() === '') throw new AgentConfigError(`${shown}: a graph id is empty`);
    specs.set(graphId, graphSpec(graphId, entry, path.dirname(file), env));
  }
  return { specs, flow };
}

function graphSpec(graphId: string, entry: unknown, dir: string, env: NodeJS.ProcessEnv): GraphSpec {
  // langgraph.json also writes a graph as {"path": "./x.ts:graph", "description": "..."}.
  if (isObject(entry) && typeof entry.path === 'string') entry = entry.path;
  if (typeof entry === 'string' && entry.trim() !== '') return moduleSpec(entry.trim(), dir);
  if (isObject(entry) && 'url' in entry) return remoteSpec(graphId, entry, env);
  throw new AgentConfigError(`graph "${graphId}": must be "path/to/file.ts:export" or {"url": ...} (got ${JSON.stringify(entry)})`, graphId);
}

/** "./agents/digest.ts:graph" → the file (relative to the config file) and the export; no ":" means the default export. */
export function moduleSpec(written: string, dir: string): ModuleGraphSpec {
  const colon = written.lastIndexOf(':');
  // A colon inside the path (a Windows drive, a URL scheme) is not an export separator.
  const hasExport = colon > 0 && !/[\\/]/.test(written.slice(colon + 1));
  const pathWritten = hasExport ? written.slice(0, colon) : written;
  return { kind: 'module', file: path.resolve(dir, pathWritten), exportName: hasExport ? written.slice(colon + 1) : 'default', pathWritten };
}

function remoteSpec(graphId: string, entry: Record<string, unknown>, env: NodeJS.ProcessEnv): GraphSpec {
  const fail = (rule: string) => new AgentConfigError(`graph "${graphId}": ${rule}`, graphId);
  const url = entry.url;
  if (typeof url !== 'string' || !URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol)) {
    throw fail(`url must be an http(s) URL (got ${JSON.stringify(url)})`);
  }
  const timeout = entry.timeout_s;
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0) || timeout > 86400)) {
    throw fail(`timeout_s must be a number of seconds between 0 and 86400 (got ${JSON.stringify(timeout)})`);
  }
  const headers: Record<string, string> = {};
  if (entry.headers !== undefined) {
    if (!isObject(entry.headers)) throw fail('headers must be an object of header names to strings');
    for (const [name, value] of Object.entries(entry.headers)) {
      if (typeof value !== 'string') throw fail(`header "${name}" must be a string`);
      headers[name] = expandEnv(
        value,
        (variable) => {
          throw fail(`header "${name}" uses \${${variable}}, which is not set`);
        },
        env,
      );
    }
  }
  return { kind: 'remote', url, timeoutMs: timeout === undefined ? null : Math.round(timeout * 1000), headers };
}

/** `${NAME}` in a header value is replaced by that environment variable, so secrets stay out of the file. */
function expandEnv(value: string, missing: (variable: string) => never, env: NodeJS.ProcessEnv): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, variable: string) => env[variable] ?? missing(variable));
}

/** Imports a module graph's export and works out which kind of agent it is. */
async function loadModuleAgent(graphId: string, spec: ModuleGraphSpec): Promise<{ kind: AgentKind; agent: Agent; graph?: CompiledGraph }> {
  const fail = (rule: string) => new AgentConfigError(`graph "${graphId}": ${rule}`, graphId);
  const shownFile = spec.pathWritten;
  if (!existsSync(spec.file)) throw fail(`${shownFile} not found (${spec.file})`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(spec.file).href)) as Record<string, unknown>;
  } catch (err) {
    throw fail(`${shownFile} failed to load: ${firstLine(err)}`);
  }
  if (!(spec.exportName in mod)) {
    const names = Object.keys(mod);
    throw fail(`${shownFile} has no export "${spec.exportName}" (${names.length ? `it exports ${names.join(', ')}` : 'it exports nothing'})`);
  }
  let value = mod[spec.exportName];
  if (isGraphBuilder(value)) value = value.compile();
  if (isCompiledGraph(value)) return { kind: 'langgraph', agent: langGraphAgent(value), graph: value };
  if (typeof value === 'function') {
    const fn = value as Agent;
    // A synchronous function works too; its throw becomes the run's error like a rejection.
    return { kind: 'function', agent: async (input, ctx) => fn(input, ctx) };
  }
  throw fail(`export "${spec.exportName}" of ${shownFile} is neither a function (input, ctx) nor a LangGraph graph`);
}

function firstLine(err: unknown): string {
  return (
    (err instanceof Error ? err.message : String(err))
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? 'unknown error'
  );
}

/**
 * The built-in graphs plus those of the config file, code imported and checked. Throws
 * AgentConfigError (one line, naming the graph) on the first problem.
 */
export async function loadAgents(opts: { configPath?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<LoadedAgents> {
  const cwd = opts.cwd ?? process.cwd();
  const registry = builtinAgents();
  const kinds: Record<string, AgentKind> = Object.fromEntries(registry.graphIds().map((id) => [id, 'builtin' as const]));
  const stateful: CompiledGraph[] = [];
  const configFile = findConfigFile(opts.configPath, cwd);
  if (configFile) {
    const { specs, flow } = parseConfig(configFile, readFileSync(configFile, 'utf8'), opts.env ?? process.env);
    registry.flow = flow;
    for (const [graphId, spec] of specs) {
      if (spec.kind === 'remote') {
        registry.register(graphId, remoteAgent(spec), undefined, { kind: 'remote' });
        kinds[graphId] = 'remote';
        continue;
      }
      const loaded = await loadModuleAgent(graphId, spec);
      const keeps = loaded.graph !== undefined && keepsState(loaded.graph);
      const description = loaded.graph ? describeLangGraph(loaded.graph) : { kind: loaded.kind };
      registry.register(graphId, loaded.agent, keeps ? checkpointedGraph(loaded.graph!) : undefined, description);
      if (keeps) stateful.push(loaded.graph!);
      kinds[graphId] = loaded.kind;
    }
  }
  return {
    registry,
    configFile,
    kinds,
    useCheckpointer(checkpointer) {
      // Replaces a checkpointer the graph was compiled with (a MemorySaver would lose the state
      // between workers): every process reads and writes the same PostgreSQL checkpoints.
      for (const graph of stateful) graph.checkpointer = checkpointer;
    },
  };
}
