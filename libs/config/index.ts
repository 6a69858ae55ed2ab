export { configSchema, loadConfig, loadConfigOrExit, requireDatabaseUrl, ConfigError } from './config.ts';
export type { Config } from './config.ts';
export { databaseSettings, DATABASE_ROLE_DEFAULTS } from './database.ts';
export type { DatabaseRole, DatabaseSettings } from './database.ts';
