export { configSchema, loadConfig, loadConfigOrExit, requireDatabaseUrl, ConfigError } from './config.ts';
export type { Config } from './config.ts';
