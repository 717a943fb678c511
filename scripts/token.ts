/**
 * `npm run token -- [rights...] [--sub NAME] [--expires 1h] ...`: prints a bearer token signed with
 * the first of AUTH_HMAC_SECRETS (the service's own secrets), for development and simple setups.
 *
 *   export AUTH_HMAC_SECRETS="dev:$(openssl rand -hex 32)"      # the service and this command share it
 *   TOKEN=$(npm run --silent token -- --sub ana files:*:disk:users/ana)
 *   curl -H "Authorization: Bearer $TOKEN" http://localhost:8081/filestorage/v1/disk/list/users/ana
 *
 * A right is an OAuth scope `files:<read|write|delete|*>:<store|*>:<path prefix>` (see README,
 * "Security"); `--read PREFIX`, `--write PREFIX`, `--delete PREFIX` and `--all PREFIX` write them for
 * the store `--store` (default disk).
 */
import { parseArgs } from 'node:util'
import { type Action, ADMIN_SCOPE, mintToken, scopeOf } from '../src/auth/index.js'
import { ConfigError, loadConfig } from '../src/adapters/service/config.js'

const USAGE = `usage: npm run --silent token -- [scope ...] [--sub NAME] [--read|--write|--delete|--all PREFIX ...]
                     [--store NAME] [--expires 1h] [--audience AUD] [--issuer ISS]
  scope     files:<read|write|delete|*>:<store|*>:<path prefix>, e.g. files:read:disk:users/ana;
            or filestorage:admin, the operator's right (dead letters of events)
  --sub     the subject, logged by the service and owner of its uploads (default: $USER)
  --expires how long the token lives (default 1h; 30m, 12h, 7d...)
  AUTH_HMAC_SECRETS (kid:secret,...) must be set as for the service; its first key signs.
  --audience and --issuer default to AUTH_AUDIENCE (its first) and AUTH_ISSUER.`

function fail(message: string): never {
  console.error(`token: ${message}\n\n${USAGE}`)
  process.exit(2)
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        sub: { type: 'string' },
        store: { type: 'string', default: 'disk' },
        read: { type: 'string', multiple: true, default: [] },
        write: { type: 'string', multiple: true, default: [] },
        delete: { type: 'string', multiple: true, default: [] },
        all: { type: 'string', multiple: true, default: [] },
        expires: { type: 'string', default: '1h' },
        audience: { type: 'string' },
        issuer: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (e) {
    fail((e as Error).message)
  }
})()
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}

const env = (() => {
  try {
    // The variables as the service reads them, so a bad secret is named the same way.
    return loadConfig({ ...process.env, HOST: '127.0.0.1', AUTH_MODE: undefined })
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message)
    throw e
  }
})()
const key = env.AUTH_HMAC_SECRETS[0]
if (!key) fail('AUTH_HMAC_SECRETS is not set (e.g. export AUTH_HMAC_SECRETS="dev:$(openssl rand -hex 32)", for the service too)')

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }
const expires = /^(\d+)([smhd])$/.exec(values.expires)
if (!expires) fail(`--expires ${values.expires}: write it as 30m, 1h, 7d...`)

const flagged = (action: Action | '*', prefixes: string[]) => prefixes.map((p) => scopeOf(action, values.store, p.replace(/^\/+/, '')))
const scopes = [
  ...positionals,
  ...flagged('read', values.read),
  ...flagged('write', values.write),
  ...flagged('delete', values.delete),
  ...flagged('*', values.all),
]
if (scopes.length === 0) fail('give at least one right: a scope, or --read/--write/--delete/--all PREFIX ("" for the whole store)')
for (const scope of scopes) if (!scope.startsWith('files:') && scope !== ADMIN_SCOPE) fail(`"${scope}" is not a files:... scope (nor ${ADMIN_SCOPE})`)

const audience = values.audience ?? env.AUTH_AUDIENCE[0]
const issuer = values.issuer ?? env.AUTH_ISSUER
console.log(
  await mintToken({
    key,
    sub: values.sub ?? process.env.USER ?? 'developer',
    scopes,
    expiresIn: Number(expires[1]) * UNITS[expires[2]!]!,
    rightsClaim: env.AUTH_RIGHTS_CLAIM,
    ...(audience ? { audience } : {}),
    ...(issuer ? { issuer } : {}),
  }),
)
