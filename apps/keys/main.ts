// Manages the API keys of AUTH_MODE=api_key (`npm run keys -- <command>`). Only a hash of each key
// is stored: `create` prints the key once, on stdout alone, so `KEY=$(npm run -s keys -- create --user alice)` works.
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../../libs/config/index.ts';
import { createPool, embeddedDatabaseUrl, isDatabaseUnavailable, migrate } from '../../libs/db/index.ts';
import { isUuid } from '../../libs/ids/index.ts';
import { createApiKey, listApiKeys, revokeApiKey } from '../../libs/keys/index.ts';

const USAGE = `usage: npm run keys -- <command>
  create --user <user_id> [--name <label>]   make a key for a user and print it (shown only this once)
  list [--user <user_id>]                    list keys (prefix, user, dates; never the key)
  revoke <key_id>                            revoke a key: requests with it answer 401`;

function fail(message: string): never {
  process.stderr.write(`agentcron keys: ${message}\n`);
  process.exit(2);
}

function parseCommandLine() {
  try {
    return parseArgs({ options: { user: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  } catch (err) {
    return fail(`${(err as Error).message}\n${USAGE}`);
  }
}

const args = parseCommandLine();
const [command, ...rest] = args.positionals;
if (args.values.help || !command) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(command || args.values.help ? 0 : 2);
}

if (!['create', 'list', 'revoke'].includes(command)) fail(`unknown command "${command}"\n${USAGE}`);

const config = loadConfigOrExit();
// Next to `npm start` (no DATABASE_URL), the keys go to its embedded database.
const databaseUrl = config.DATABASE_URL ?? embeddedDatabaseUrl(config.EMBEDDED_PG_PORT);
const pool = createPool(databaseUrl, { max: 1, applicationName: 'agentcron-keys' });
try {
  // The keys table may be newer than the database (keys made before npm start's first start): next
  // to the embedded database, migrate as npm start would; a deployment's release migrates its own.
  if (config.MIGRATE_ON_START ?? !config.DATABASE_URL) await migrate(pool);
  switch (command) {
    case 'create': {
      const user = args.values.user?.trim();
      if (!user) fail('create needs --user <user_id>');
      const { key, record } = await createApiKey(pool, user, args.values.name?.trim() || null);
      process.stdout.write(`${key}\n`);
      process.stderr.write(`created key ${record.key_id} (${record.key_prefix}…) for user "${record.user_id}"; store it now: only its hash is kept\n`);
      break;
    }
    case 'list': {
      const keys = await listApiKeys(pool, args.values.user?.trim() || null);
      for (const k of keys) {
        const state = k.revoked_at ? `revoked ${k.revoked_at.toISOString()}` : `last used ${k.last_used_at?.toISOString() ?? 'never'}`;
        process.stdout.write(
          `${k.key_id}  ${k.key_prefix}…  user=${k.user_id}${k.name ? `  name=${k.name}` : ''}  created ${k.created_at.toISOString()}  ${state}\n`,
        );
      }
      if (keys.length === 0) process.stderr.write('no keys\n');
      break;
    }
    case 'revoke': {
      const keyId = rest[0];
      if (!keyId || !isUuid(keyId)) fail('revoke needs a key_id (see `list`)');
      if (!(await revokeApiKey(pool, keyId))) fail(`no active key ${keyId}`);
      process.stderr.write(`revoked ${keyId}\n`);
      break;
    }
    default:
      fail(`unknown command "${command}"\n${USAGE}`);
  }
} catch (err) {
  if (!config.DATABASE_URL && isDatabaseUnavailable(err)) {
    fail(`DATABASE_URL is not set and no \`npm start\` database answers on port ${config.EMBEDDED_PG_PORT}: start \`npm start\`, or set DATABASE_URL`);
  }
  process.stderr.write(`agentcron keys: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await pool.end();
}
