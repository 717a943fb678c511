/**
 * Configuration from the environment (SPEC 4), validated with zod. A bad value stops start-up with
 * a message naming the variable.
 */
import { isIP } from 'node:net'
import { availableParallelism } from 'node:os'
import { z } from 'zod'
import { parseSecret } from '../../events/signing.js'
import { hostAddress } from './host-address.js'
import { parseQuotaList, readQuotaFile } from './quota-config.js'

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
}

/** A byte count: `1048576`, `1MiB`, `512 MB`. */
export const byteSize = z
  .string()
  .trim()
  .transform((value, ctx) => {
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value)
    const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined
    if (!m || unit === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a byte size (e.g. 1048576, 1MiB, 512MB)` })
      return z.NEVER
    }
    return Math.floor(Number(m[1]) * unit)
  })

const seconds = z.coerce.number().positive()

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** A duration as Consul writes them (`10s`, `1m30s`, `500ms`), in milliseconds. */
export const duration = z
  .string()
  .trim()
  .transform((value, ctx) => {
    const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)]
    if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (e.g. 500ms, 10s, 1m30s)` })
      return z.NEVER
    }
    return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0))
  })
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

const emptyAsUnset = (v: unknown) => (v === '' ? undefined : v)

/** An optional string variable: unset or empty mean the same. */
export const optionalString = z.preprocess(emptyAsUnset, z.string().optional())

/** SERVICE_NAME, as Consul takes service names here. */
export const serviceName = z.string().regex(/^[a-zA-Z0-9-]+$/, 'letters, digits and dashes only').default('filestorage')

/** A comma-separated list; blanks around the items and empty items dropped. */
const commaList = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )

/** `kid:secret` pairs, comma-separated (AUTH_HMAC_SECRETS, AUTH_URL_SIGNING_KEYS): ids for rotation, secrets of 32 bytes or more. */
const secretKeys = commaList.transform((items, ctx) =>
  items.map((item) => {
    const colon = item.indexOf(':')
    const kid = item.slice(0, colon)
    const secret = item.slice(colon + 1)
    if (colon < 1 || !/^[A-Za-z0-9._-]+$/.test(kid)) {
      ctx.addIssue({ code: 'custom', message: 'each key is kid:secret, the kid made of letters, digits, ".", "_" and "-"' })
    } else if (Buffer.byteLength(secret) < 32) {
      ctx.addIssue({ code: 'custom', message: `the secret of "${kid}" is shorter than 32 bytes (try: openssl rand -hex 32)` })
    }
    return { kid, secret }
  }),
)

/** `whsec_` secrets, comma-separated (WEBHOOK_SECRET, HOOK_SECRET). */
const webhookSecrets = commaList.transform((items, ctx) => {
  for (const item of items) {
    try {
      parseSecret(item)
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message })
    }
  }
  return items
})

/** An address or a CIDR block (TRUSTED_PROXIES). */
const addressOrBlock = z.string().refine((v) => {
  const [address, bits, ...rest] = v.split('/')
  const family = isIP(address ?? '')
  const max = family === 4 ? 32 : 128
  return family !== 0 && rest.length === 0 && (bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max))
}, 'each item is an IP address or a CIDR block (10.0.0.0/8)')

/** A host name (ALLOWED_HOSTS): `files.internal`, `.example.com` (it and every name under it), or `*`. */
const hostName = z
  .string()
  .regex(/^(?:\*|\.?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?)$/, 'each item is a host name without scheme or port (files.internal, .example.com), or *')

const httpUrl = z.preprocess(emptyAsUnset, z.url({ protocol: /^https?$/ }).optional())

/** A byte size for the quota parsers, which throw on a bad one. */
function sizeOf(text: string): number {
  const parsed = byteSize.safeParse(text)
  if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? `"${text}" is not a byte size`)
  return parsed.data
}

/** A parser's thrown message as the variable's issue. */
const parsedBy =
  <T>(parse: (value: string) => T) =>
  (value: string, ctx: z.RefinementCtx): T => {
    try {
      return parse(value)
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message })
      return z.NEVER
    }
  }

/** `<amount>/<window>`: so much per window of whole seconds (`50/1s`, `600/1m`, `10MiB/1s`). */
const perWindow = (amount: (text: string) => number) =>
  z.preprocess(
    emptyAsUnset,
    z
      .string()
      .trim()
      .transform(
        parsedBy((value) => {
          const slash = value.lastIndexOf('/')
          const window = slash < 0 ? undefined : duration.safeParse(value.slice(slash + 1).trim())
          if (!window?.success || window.data < 1000 || window.data % 1000 !== 0) {
            throw new Error(`"${value}" is not <amount>/<window> with a window of whole seconds (e.g. 50/1s, 600/1m)`)
          }
          const points = amount(value.slice(0, slash).trim())
          if (!Number.isSafeInteger(points) || points < 1) throw new Error(`"${value}": the amount must be 1 or more`)
          return { points, windowSeconds: window.data / 1000 }
        }),
      )
      .optional(),
  )

const count = (text: string): number => {
  if (!/^\d+$/.test(text)) throw new Error(`"${text}" is not a whole number`)
  return Number(text)
}

const otlpProtocol = z.preprocess(
  emptyAsUnset,
  z
    .enum(['http/protobuf', 'http/json'], { error: "http/protobuf or http/json (gRPC is not offered: use the collector's OTLP/HTTP port, 4318)" })
    .optional(),
)

export const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  /** Default: 0.0.0.0 with authentication configured, else 127.0.0.1 (see loadConfig). */
  HOST: optionalString,
  STORAGE_DIR: z.string().min(1).default('./data'),
  DISK_CACHE_BYTES: byteSize.default(32 * 1024 ** 2),
  MONGODB_URI: z.preprocess(emptyAsUnset, z.string().regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb://').optional()),
  MONGODB_DB: z.string().min(1).default('filestorage'),
  INLINE_MAX_BYTES: byteSize
    .default(1024 * 1024)
    .pipe(z.number().int().min(0).max(15 * 1024 * 1024, 'must be at most 15 MiB (BSON documents are capped at 16 MiB)')),
  MAX_UPLOAD_BYTES: z.preprocess(emptyAsUnset, byteSize.pipe(z.number().int().positive()).optional()),
  PART_SIZE_LIMIT: byteSize.default(1024 ** 3).pipe(z.number().int().positive()),
  UPLOAD_EXPIRY_SECONDS: seconds.default(24 * 60 * 60),
  SWEEP_INTERVAL_SECONDS: seconds.default(10 * 60),
  /**
   * mongo store: how long a completion of an upload in parts holds it unless it renews that (it does
   * while it works), so how long a retry waits when the completing process died.
   */
  COMPLETION_LEASE_SECONDS: seconds.default(30),
  SHUTDOWN_TIMEOUT_SECONDS: seconds.default(30),
  /** Processes serving requests (node:cluster, sharing the socket): a number, or `auto` for one per core. */
  WORKERS: z
    .union([z.literal('auto'), z.coerce.number().int().min(1).max(256)])
    .default(1)
    .transform((v) => (v === 'auto' ? availableParallelism() : v)),
  /** A client must send its request line and headers within this (slowloris: connections that dribble). */
  HEADERS_TIMEOUT_SECONDS: seconds.default(20),
  /** A request body that sends nothing for this long while the server waits for it is cut (408). */
  BODY_IDLE_TIMEOUT_SECONDS: seconds.default(30),
  /** A JSON body (move, createupload, completeupload, sign) must arrive whole within this (408); uploads have no such deadline. */
  REQUEST_TIMEOUT_SECONDS: seconds.default(30),
  /** A response whose bytes the client takes none of for this long (a download it stopped reading) is cut: connection closed, file closed. */
  SEND_IDLE_TIMEOUT_SECONDS: seconds.default(60),
  /** Connections one process serves at once (each worker, with WORKERS); more are refused until some close. */
  MAX_CONNECTIONS: z.coerce.number().int().min(1).default(1024),
  LOG_REQUESTS: flag.default(true),
  // Operations (docs/operations.md): logs, metrics, traces.
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `auto`: readable lines on a terminal, JSON lines otherwise. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  /** Prometheus metrics at /metrics on this port (every WORKERS process in one scrape); unset: no such listener. */
  METRICS_PORT: z.preprocess(emptyAsUnset, z.coerce.number().int().min(0).max(65535).optional()),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** Also /metrics on the main port, for a caller holding the operator's right (filestorage:admin). */
  METRICS_ON_MAIN_PORT: flag.default(false),
  // The OpenTelemetry SDK's own variables that decide whether traces are on and where they go (tracing-sdk.ts).
  OTEL_SDK_DISABLED: z.preprocess(emptyAsUnset, z.string().optional()).transform((v) => v?.trim().toLowerCase() === 'true'),
  OTEL_TRACES_EXPORTER: z.preprocess(emptyAsUnset, z.enum(['otlp', 'console', 'none'], { error: 'otlp, console or none' }).optional()),
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpUrl,
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol,
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol,
  /** Browser origins allowed to call the API (CORS), comma-separated, or `*`; unset: no CORS headers. */
  CORS_ORIGINS: commaList.pipe(z.array(z.union([z.literal('*'), z.url({ protocol: /^https?$/ })]))),
  CONSUL_HTTP_ADDR: optionalString,
  CONSUL_HTTP_TOKEN: optionalString,
  CONSUL_CHECK_INTERVAL: duration.default(10_000).pipe(z.number().min(1000, 'must be at least 1s (Consul runs checks at most once a second)')),
  CONSUL_CHECK_TIMEOUT: duration.default(5000).pipe(z.number().positive()),
  CONSUL_DEREGISTER_AFTER: duration.default(60_000).pipe(z.number().min(60_000, "must be at least 1m (Consul's minimum)")),
  /** The URL Consul's HTTP check calls; by default SERVICE_ADDRESS, the bound port and /filestorage/v1/check. */
  CONSUL_CHECK_URL: z.preprocess(emptyAsUnset, z.url({ protocol: /^https?$/ }).optional()),
  CONSUL_RESYNC_INTERVAL: duration.default(10_000).pipe(z.number().min(100)),
  SERVICE_NAME: serviceName,
  SERVICE_ADDRESS: optionalString,
  SERVICE_TAGS: commaList,
  // Access control (SPEC 6; README "Security").
  AUTH_MODE: z.preprocess(emptyAsUnset, z.enum(['token', 'anonymous']).optional()),
  AUTH_ISSUER: httpUrl,
  AUTH_JWKS_URL: httpUrl,
  AUTH_AUDIENCE: commaList,
  AUTH_HMAC_SECRETS: secretKeys,
  AUTH_RIGHTS_CLAIM: z.string().min(1).default('filestorage'),
  AUTH_CLOCK_SKEW: duration.default(30_000).pipe(z.number().max(300_000, 'must be at most 5m')),
  AUTH_JWKS_COOLDOWN: duration.default(30_000),
  AUTH_URL_SIGNING_KEYS: secretKeys,
  AUTH_URL_MAX_EXPIRY: duration.default(3_600_000).pipe(z.number().min(1000, 'must be at least 1s')),
  /** Where clients reach the service (tus Location, signed URLs); default: the request's own host. */
  PUBLIC_URL: httpUrl,
  /**
   * Anonymous mode: host names requests may name besides IP literals, localhost and *.localhost (and
   * PUBLIC_URL's host); `*` for any. Others are refused: DNS rebinding (src/auth/allowed-hosts.ts).
   */
  ALLOWED_HOSTS: commaList.pipe(z.array(hostName)),
  /** Proxies whose Forwarded / X-Forwarded-* headers are believed. */
  TRUSTED_PROXIES: commaList.pipe(z.array(addressOrBlock)),
  /**
   * nginx sends the bytes of disk-store downloads: its internal location mapped to STORAGE_DIR
   * (deploy/nginx/nginx.conf); unset: the service sends them.
   */
  /** The s3 store (SPEC 7; docs/configuration.md): its bucket; unset, there is no s3 store. */
  S3_BUCKET: z.preprocess(emptyAsUnset, z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name (3-63 lower-case letters, digits, dots, dashes)').optional()),
  /** An S3-compatible server; unset: AWS. */
  S3_ENDPOINT: httpUrl,
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** Default: true with S3_ENDPOINT (most S3-compatible servers want the bucket in the path). */
  S3_FORCE_PATH_STYLE: z.preprocess(emptyAsUnset, flag.optional()),
  S3_PREFIX: optionalString,
  /** Authorized downloads answer 302 to a short-lived presigned URL of the object. */
  S3_REDIRECT_DOWNLOADS: flag.default(false),
  /** Where clients reach the bucket, for presigned URLs (default: S3_ENDPOINT). */
  S3_PUBLIC_ENDPOINT: httpUrl,
  /** How long one S3 request may take to be answered before the store gives up (503). */
  S3_TIMEOUT_SECONDS: seconds.default(15),
  /** Whether the server honours If-Match / If-None-Match on writes: `auto` probes it. */
  S3_CONDITIONAL_WRITES: z.enum(['auto', 'true', 'false']).default('auto'),
  ACCEL_REDIRECT_LOCATION: z.preprocess(
    emptyAsUnset,
    z.string().regex(/^\/([A-Za-z0-9._~-]+\/)+$/, 'must be a location path such as /_filestorage/disk/').optional(),
  ),
  // Quotas and rate limits (docs/operations.md).
  /** Quota rules, `<store>[:<prefix>]=<limit>[,<limit>]` separated by `;` (quota-config.ts). */
  QUOTAS: z.string().default('').transform(parsedBy((v) => parseQuotaList(v, sizeOf))),
  /** A JSON file of quota rules, added to QUOTAS'. */
  QUOTAS_FILE: z.string().default('').transform(parsedBy((v) => (v.trim() === '' ? [] : readQuotaFile(v, sizeOf)))),
  /** How often each process settles the reservations of dead processes and ended uploads, and recounts what they may have left wrong. */
  QUOTA_RECOVERY_INTERVAL: duration.default(15_000).pipe(z.number().min(100, 'must be at least 100ms')),
  /** How often every quota's usage is counted from the store again (files put on a disk store by hand among it). */
  QUOTA_RECOUNT_INTERVAL: duration.default(6 * 3_600_000).pipe(z.number().min(1000, 'must be at least 1s')),
  /** Requests per principal (per client address without one): `<n>/<window>`. */
  RATE_LIMIT_REQUESTS: perWindow(count),
  /** Bytes of uploads and downloads per principal (per address): `<size>/<window>`; throttled, never refused. */
  RATE_LIMIT_BYTES: perWindow(sizeOf),
  /** Shares the limits across instances and WORKERS; unset: each process limits on its own. */
  RATE_LIMIT_REDIS_URL: z.preprocess(emptyAsUnset, z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional()),
  /** While Redis does not answer: `local` (each process limits on its own), `allow` (no limits) or `refuse` (429). */
  RATE_LIMIT_REDIS_DOWN: z.enum(['local', 'allow', 'refuse']).default('local'),
  /** Redis counts as not answering after this long. */
  RATE_LIMIT_REDIS_TIMEOUT: duration.default(250).pipe(z.number().positive()),
  // Events (docs/events.md): endpoints, the Redis stream, blocking hooks; read by events-config.ts.
  WEBHOOK_URL: httpUrl,
  /** `whsec_` secrets, comma-separated: every try is signed with each (rotation). */
  WEBHOOK_SECRET: webhookSecrets,
  WEBHOOK_RETRY_FOR: duration.default(24 * 3_600_000).pipe(z.number().min(1000, 'must be at least 1s')),
  WEBHOOK_RETRY_DELAY_MAX: duration.default(600_000).pipe(z.number().min(100)),
  WEBHOOK_TIMEOUT: duration.default(10_000).pipe(z.number().min(100)),
  EVENTS_CONFIG: optionalString,
  EVENTS_BACKLOG_MAX: z.coerce.number().int().min(1).default(100_000),
  EVENTS_REDIS_URL: z.preprocess(emptyAsUnset, z.string().regex(/^rediss?:\/\/./, 'must start with redis:// or rediss://').optional()),
  EVENTS_REDIS_STREAM: z.string().min(1).default('filestorage:events'),
  EVENTS_REDIS_MAXLEN: z.coerce.number().int().min(1).default(1_000_000),
  PRE_UPLOAD_HOOK_URL: httpUrl,
  PRE_DELETE_HOOK_URL: httpUrl,
  HOOK_SECRET: webhookSecrets,
  HOOK_TIMEOUT: duration.default(5000).pipe(z.number().min(100)),
  HOOK_FAILURE_POLICY: z.enum(['refuse', 'allow']).default('refuse'),
})

type ParsedConfig = z.infer<typeof configSchema>

/** The configuration, with HOST, SERVICE_ADDRESS and the access mode resolved. */
export type Config = ParsedConfig & { HOST: string; SERVICE_ADDRESS: string; AUTH_MODE: 'token' | 'anonymous' }

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Reads the configuration; throws a ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const config = parseEnvironment(configSchema, env)
  const keys = Boolean(config.AUTH_ISSUER || config.AUTH_JWKS_URL || config.AUTH_HMAC_SECRETS.length > 0)
  const mode = config.AUTH_MODE ?? (keys ? 'token' : 'anonymous')
  if (mode === 'token' && !keys) {
    throw new ConfigError('invalid configuration:\n  AUTH_MODE=token: set AUTH_ISSUER, AUTH_JWKS_URL or AUTH_HMAC_SECRETS to verify tokens with')
  }
  if (mode === 'anonymous' && keys) {
    throw new ConfigError('invalid configuration:\n  AUTH_MODE=anonymous: token keys are configured too (AUTH_ISSUER, AUTH_JWKS_URL, AUTH_HMAC_SECRETS); unset one or the other')
  }
  const host = config.HOST ?? (mode === 'token' ? '0.0.0.0' : '127.0.0.1')
  if (config.METRICS_PORT !== undefined && config.METRICS_PORT !== 0 && config.METRICS_PORT === config.PORT) {
    throw new ConfigError('invalid configuration:\n  METRICS_PORT: must differ from PORT (or use METRICS_ON_MAIN_PORT=true)')
  }
  if (mode === 'anonymous' && config.AUTH_MODE === undefined && !isLoopback(host)) {
    throw new ConfigError(
      `refusing to serve HOST=${host} without authentication: anyone who reaches it could read, overwrite and delete every file.\n` +
        '  Configure AUTH_ISSUER, AUTH_JWKS_URL or AUTH_HMAC_SECRETS (README, "Security"), listen on a loopback address\n' +
        '  (HOST=127.0.0.1), or set AUTH_MODE=anonymous to serve everyone anonymously on purpose.',
    )
  }
  return { ...config, HOST: host, AUTH_MODE: mode, SERVICE_ADDRESS: config.SERVICE_ADDRESS ?? hostAddress(host) }
}

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x.x.x) and localhost: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

/** Variables whose values are secrets: a configuration error names them but never shows them (it goes to the logs). */
const SECRET_VARIABLES = new Set(['AUTH_HMAC_SECRETS', 'AUTH_URL_SIGNING_KEYS', 'CONSUL_HTTP_TOKEN', 'WEBHOOK_SECRET', 'HOOK_SECRET'])

/** `NAME="value"` as an error shows it: a secret's value left out, a URL's password masked. */
function shownVariable(name: string, value: string): string {
  if (SECRET_VARIABLES.has(name)) return `${name} (value not shown)`
  return `${name}=${JSON.stringify(value.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@'))}`
}

/** Reads the variables `schema` names from `env`; throws a ConfigError naming every bad one. */
export function parseEnvironment<Schema extends z.ZodObject>(
  schema: Schema,
  env: Record<string, string | undefined>,
): z.output<Schema> {
  const known = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, env[k]]))
  const result = schema.safeParse(known)
  if (result.success) return result.data
  const lines = result.error.issues.map((i) => {
    const name = String(i.path[0])
    return `  ${shownVariable(name, env[name] ?? '')}: ${i.message}`
  })
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`)
}
