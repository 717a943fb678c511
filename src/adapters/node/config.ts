/**
 * Configuration from the environment (SPEC 4), validated with zod. A bad value stops start-up with
 * a message naming the variable.
 */
import { z } from 'zod'

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
const bytes = z
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
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

const emptyAsUnset = (v: unknown) => (v === '' ? undefined : v)

export const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  HOST: z.string().min(1).default('0.0.0.0'),
  STORAGE_DIR: z.string().min(1).default('./data'),
  MONGODB_URI: z.preprocess(emptyAsUnset, z.string().regex(/^mongodb(\+srv)?:\/\//, 'must start with mongodb://').optional()),
  MONGODB_DB: z.string().min(1).default('filestorage'),
  INLINE_MAX_BYTES: bytes
    .default(1024 * 1024)
    .pipe(z.number().int().min(0).max(15 * 1024 * 1024, 'must be at most 15 MiB (BSON documents are capped at 16 MiB)')),
  MAX_UPLOAD_BYTES: z.preprocess(emptyAsUnset, bytes.pipe(z.number().int().positive()).optional()),
  PART_SIZE_LIMIT: bytes.default(1024 ** 3).pipe(z.number().int().positive()),
  UPLOAD_EXPIRY_SECONDS: seconds.default(24 * 60 * 60),
  SWEEP_INTERVAL_SECONDS: seconds.default(10 * 60),
  SHUTDOWN_TIMEOUT_SECONDS: seconds.default(30),
  LOG_REQUESTS: flag.default(true),
  CONSUL_HTTP_ADDR: z.preprocess(emptyAsUnset, z.string().optional()),
  SERVICE_NAME: z.string().regex(/^[a-zA-Z0-9-]+$/, 'letters, digits and dashes only').default('filestorage'),
  SERVICE_ADDRESS: z.preprocess(emptyAsUnset, z.string().optional()),
  SERVICE_TAGS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    ),
})

export type Config = z.infer<typeof configSchema>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Reads the configuration; throws a ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.fromEntries(Object.keys(configSchema.shape).map((k) => [k, env[k]]))
  const result = configSchema.safeParse(known)
  if (result.success) return result.data
  const lines = result.error.issues.map((i) => {
    const name = String(i.path[0])
    return `  ${name}=${JSON.stringify(env[name] ?? '')}: ${i.message}`
  })
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`)
}
