/**
 * Events from the operator's configuration (docs/events.md, "Configuration"): WEBHOOK_URL and
 * WEBHOOK_SECRET for one endpoint (named `default`), EVENTS_CONFIG for a JSON file with several
 * (each with its filters) and the hooks, EVENTS_REDIS_URL for the stream, PRE_UPLOAD_HOOK_URL and
 * PRE_DELETE_HOOK_URL for the hooks. Endpoints never come from API callers. A bad file stops
 * start-up with a message naming EVENTS_CONFIG and what is wrong in it.
 */
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { type EndpointOptions, type EventsOptions, type HookOptions, parseSecret } from '../../events/index.js'
import { EVENT_TYPES, parsePath } from '../../storage/index.js'
import { type Config, ConfigError, duration } from './config.js'

const secret = z.string().superRefine((value, ctx) => {
  try {
    parseSecret(value)
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message })
  }
})

/** `secret` or `secrets` (several, while keys rotate). */
const secretsOf = (o: { secret?: string | undefined; secrets?: string[] | undefined }) => [...(o.secret !== undefined ? [o.secret] : []), ...(o.secrets ?? [])]

const typePattern = z
  .string()
  .refine((t) => t === '*' || (EVENT_TYPES as readonly string[]).includes(t) || t === 'file.*' || t === 'upload.*', {
    message: `a type is one of ${EVENT_TYPES.join(', ')}, or file.*, upload.*, *`,
  })

const prefix = z.string().transform((value, ctx) => {
  try {
    return parsePath(value.replace(/^\/+/, ''), { folder: true })
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message })
    return z.NEVER
  }
})

const endpointSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, 'letters, digits, "_" and "-", starting with a letter or digit'),
    url: z.url({ protocol: /^https?$/ }),
    secret: secret.optional(),
    secrets: z.array(secret).optional(),
    stores: z.array(z.string()).min(1).optional(),
    prefixes: z.array(prefix).min(1).optional(),
    types: z.array(typePattern).min(1).optional(),
    timeout: duration.optional(),
  })
  .strict()
  .refine((e) => secretsOf(e).length > 0, { message: 'give "secret" (or "secrets", several while keys rotate)' })

const hookSchema = z
  .object({
    url: z.url({ protocol: /^https?$/ }),
    secret: secret.optional(),
    secrets: z.array(secret).optional(),
    timeout: duration.optional(),
    onFailure: z.enum(['refuse', 'allow']).optional(),
  })
  .strict()
  .refine((h) => secretsOf(h).length > 0, { message: 'give "secret" (or "secrets")' })

const fileSchema = z
  .object({
    endpoints: z.array(endpointSchema).default([]),
    hooks: z.object({ 'pre-upload': hookSchema.optional(), 'pre-delete': hookSchema.optional() }).strict().default({}),
    redis: z.object({ url: z.string().regex(/^rediss?:\/\/./), stream: z.string().min(1).optional(), maxLen: z.number().int().min(1).optional() }).strict().optional(),
  })
  .strict()

type FileConfig = z.infer<typeof fileSchema>

/** The events the configuration asks for; undefined when it asks for none (no endpoint, stream or hook). */
export function eventsOptions(config: Config): EventsOptions | undefined {
  const file = config.EVENTS_CONFIG !== undefined ? readEventsFile(config.EVENTS_CONFIG) : undefined
  const problems: string[] = []
  const endpoints: EndpointOptions[] = (file?.endpoints ?? []).map((e) => ({
    name: e.name,
    url: e.url,
    keys: secretsOf(e).map(parseSecret),
    filter: { ...(e.stores ? { stores: e.stores } : {}), ...(e.prefixes ? { prefixes: e.prefixes } : {}), ...(e.types ? { types: e.types } : {}) },
    timeoutMs: e.timeout ?? config.WEBHOOK_TIMEOUT,
  }))
  if (config.WEBHOOK_URL) {
    if (config.WEBHOOK_SECRET.length === 0) problems.push('WEBHOOK_URL is set: set WEBHOOK_SECRET too (whsec_..., several comma-separated while keys rotate)')
    if (endpoints.some((e) => e.name === 'default')) problems.push('WEBHOOK_URL is the endpoint "default", which EVENTS_CONFIG names too')
    endpoints.push({ name: 'default', url: config.WEBHOOK_URL, keys: config.WEBHOOK_SECRET.map(parseSecret), filter: {}, timeoutMs: config.WEBHOOK_TIMEOUT })
  } else if (config.WEBHOOK_SECRET.length > 0) {
    problems.push('WEBHOOK_SECRET is set without WEBHOOK_URL')
  }
  const names = endpoints.map((e) => e.name)
  const twice = names.filter((n, i) => names.indexOf(n) !== i)
  if (twice.length > 0) problems.push(`EVENTS_CONFIG names the endpoint "${twice[0]}" twice`)
  const hooks: EventsOptions['hooks'] = {}
  const preUpload = hookOf(config, 'PRE_UPLOAD_HOOK_URL', file?.hooks['pre-upload'], problems)
  const preDelete = hookOf(config, 'PRE_DELETE_HOOK_URL', file?.hooks['pre-delete'], problems)
  if (preUpload) hooks.preUpload = preUpload
  if (preDelete) hooks.preDelete = preDelete
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`)
  const redisUrl = config.EVENTS_REDIS_URL ?? file?.redis?.url
  if (endpoints.length === 0 && !redisUrl && !hooks.preUpload && !hooks.preDelete) return undefined
  return {
    endpoints,
    ...(redisUrl
      ? { redis: { url: redisUrl, stream: file?.redis?.stream ?? config.EVENTS_REDIS_STREAM, maxLen: file?.redis?.maxLen ?? config.EVENTS_REDIS_MAXLEN } }
      : {}),
    hooks,
    retryForMs: config.WEBHOOK_RETRY_FOR,
    retryDelayMaxMs: config.WEBHOOK_RETRY_DELAY_MAX,
    maxBacklog: config.EVENTS_BACKLOG_MAX,
  }
}

function readEventsFile(path: string): FileConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new ConfigError(`invalid configuration:\n  EVENTS_CONFIG=${JSON.stringify(path)}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new ConfigError(`invalid configuration:\n  EVENTS_CONFIG=${JSON.stringify(path)}: not JSON (${(e as Error).message})`)
  }
  const parsed = fileSchema.safeParse(json)
  if (parsed.success) return parsed.data
  const lines = parsed.error.issues.map((i) => `  EVENTS_CONFIG=${JSON.stringify(path)}: ${i.path.join('.') || '(the file)'}: ${i.message}`)
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`)
}

function hookOf(
  config: Config,
  variable: 'PRE_UPLOAD_HOOK_URL' | 'PRE_DELETE_HOOK_URL',
  fromFile: z.infer<typeof hookSchema> | undefined,
  problems: string[],
): HookOptions | undefined {
  const url = config[variable]
  if (url && fromFile) {
    problems.push(`${variable} and EVENTS_CONFIG both configure this hook; keep one`)
    return undefined
  }
  if (fromFile) {
    return {
      url: fromFile.url,
      keys: secretsOf(fromFile).map(parseSecret),
      timeoutMs: fromFile.timeout ?? config.HOOK_TIMEOUT,
      onFailure: fromFile.onFailure ?? config.HOOK_FAILURE_POLICY,
    }
  }
  if (!url) return undefined
  if (config.HOOK_SECRET.length === 0) {
    problems.push(`${variable} is set: set HOOK_SECRET too (whsec_...)`)
    return undefined
  }
  return { url, keys: config.HOOK_SECRET.map(parseSecret), timeoutMs: config.HOOK_TIMEOUT, onFailure: config.HOOK_FAILURE_POLICY }
}
