export { configSchema, loadConfig, loadConfigOrExit, requireDatabaseUrl, ConfigError } from './config.ts';
export type { Config } from './config.ts';
export { databaseSettings, DATABASE_ROLE_DEFAULTS } from './database.ts';
export type { DatabaseRole, DatabaseSettings } from './database.ts';
export { MAINTENANCE_CATALOG, settingKey } from './maintenance-catalog.ts';
export type { CatalogEntry, MaintenanceJobName } from './maintenance-catalog.ts';
