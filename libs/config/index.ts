export { configSchema, loadConfig, loadConfigOrExit, requireDatabaseUrl, ConfigError } from './config.ts';
export type { Config } from './config.ts';
export { connectionBudget, databaseSettings, DATABASE_ROLE_DEFAULTS, DEFAULT_MAX_CONNECTIONS } from './database.ts';
export type { ConnectionBudget, DatabaseRole, DatabaseSettings } from './database.ts';
export { MAINTENANCE_CATALOG, settingKey } from './maintenance-catalog.ts';
export type { CatalogEntry, MaintenanceJobName } from './maintenance-catalog.ts';
