/**
 * The quotas an operator configures (docs/quotas.md): QUOTAS, a compact list, and
 * QUOTAS_FILE, a JSON file, read and checked at start-up like every variable.
 *
 *   QUOTAS="disk=100GiB; disk:users/{sub}=1GiB,10000 files; *:tmp=5000 files"
 *
 * Each rule is `<store>[:<prefix>]=<limit>[,<limit>]`, rules separated by `;`: the store's name, or
 * `*` for every store; the prefix (none: the whole store), where `{sub}` stands for any one segment;
 * a limit in bytes (`1GiB`, `500MB`, `1048576`) and/or in files (`10000 files`). A prefix holding
 * `;`, `,` or `=` needs the file:
 *
 *   [{ "store": "disk", "prefix": "users/{sub}", "bytes": "1GiB", "files": 10000 }]
 */
import { readFileSync } from 'node:fs'
import { parseRulePrefix } from '../../storage/index.js'

export interface ConfiguredQuota {
  /** A store's name, or `*` for every store. */
  store: string
  prefix: string
  bytes?: number
  files?: number
}

const STORE = /^(?:\*|[a-z0-9][a-z0-9_-]{0,62})$/

/** Parses QUOTAS; `sizeOf` reads a byte size (`1GiB`) and throws on anything else. Throws an Error saying what is wrong. */
export function parseQuotaList(value: string, sizeOf: (text: string) => number): ConfiguredQuota[] {
  const rules: ConfiguredQuota[] = []
  for (const raw of value.split(';').map((r) => r.trim()).filter(Boolean)) {
    const equals = raw.lastIndexOf('=')
    if (equals < 0) throw new Error(`"${raw}": a rule is <store>[:<prefix>]=<limit>[,<limit>]`)
    const target = raw.slice(0, equals).trim()
    const colon = target.indexOf(':')
    const quota: ConfiguredQuota = {
      store: colon < 0 ? target : target.slice(0, colon),
      prefix: colon < 0 ? '' : target.slice(colon + 1).trim(),
    }
    for (const limit of raw.slice(equals + 1).split(',').map((l) => l.trim())) {
      const files = /^(\d+)\s*files?$/i.exec(limit)
      if (files) setLimit(quota, 'files', Number(files[1]), raw)
      else setLimit(quota, 'bytes', sizeOf(limit), raw)
    }
    rules.push(checked(quota, raw))
  }
  return noTwice(rules)
}

/** Reads and parses QUOTAS_FILE (a JSON list of rules, or `{ "quotas": [...] }`). Throws an Error saying what is wrong. */
export function readQuotaFile(file: string, sizeOf: (text: string) => number): ConfiguredQuota[] {
  let text: string
  let parsed: unknown
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new Error(`cannot read it: ${(e as Error).message}`)
  }
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    throw new Error(`not JSON: ${(e as Error).message}`)
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { quotas?: unknown } | null)?.quotas
  if (!Array.isArray(list)) throw new Error('it must hold a list of rules, or { "quotas": [...] }')
  return noTwice(
    list.map((item: unknown, i) => {
      const where = `rule ${i + 1}`
      if (typeof item !== 'object' || item === null) throw new Error(`${where}: not an object`)
      const { store, prefix, bytes, files, ...rest } = item as Record<string, unknown>
      if (Object.keys(rest).length > 0) throw new Error(`${where}: unknown field "${Object.keys(rest)[0]}"`)
      if (typeof store !== 'string') throw new Error(`${where}: "store" must be a store's name or "*"`)
      if (prefix !== undefined && typeof prefix !== 'string') throw new Error(`${where}: "prefix" must be a string`)
      const quota: ConfiguredQuota = { store, prefix: prefix ?? '' }
      if (bytes !== undefined) setLimit(quota, 'bytes', typeof bytes === 'number' ? bytes : sizeOf(String(bytes)), where)
      if (files !== undefined) setLimit(quota, 'files', Number(files), where)
      return checked(quota, where)
    }),
  )
}

function setLimit(quota: ConfiguredQuota, kind: 'bytes' | 'files', value: number, where: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${where}: ${kind} must be a whole number, 0 or more`)
  if (quota[kind] !== undefined) throw new Error(`${where}: two limits in ${kind}`)
  quota[kind] = value
}

function checked(quota: ConfiguredQuota, where: string): ConfiguredQuota {
  if (!STORE.test(quota.store)) throw new Error(`${where}: "${quota.store}" is not a store's name (or *)`)
  if (quota.bytes === undefined && quota.files === undefined) throw new Error(`${where}: no limit (bytes, files, or both)`)
  try {
    quota.prefix = parseRulePrefix(quota.prefix)
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`)
  }
  return quota
}

function noTwice(rules: ConfiguredQuota[]): ConfiguredQuota[] {
  const seen = new Set<string>()
  for (const rule of rules) {
    const key = `${rule.store}:${rule.prefix}`
    if (seen.has(key)) throw new Error(`two rules for "${key}"`)
    seen.add(key)
  }
  return rules
}

/**
 * The rules that hold for the store `name`: its own, and those for every store (`*`) on prefixes it
 * has no rule of its own for.
 */
export function quotasOf(name: string, rules: ConfiguredQuota[]): { prefix: string; limits: { bytes?: number; files?: number } }[] {
  const own = rules.filter((r) => r.store === name)
  const shared = rules.filter((r) => r.store === '*' && !own.some((o) => o.prefix === r.prefix))
  return [...own, ...shared].map((r) => ({
    prefix: r.prefix,
    limits: { ...(r.bytes !== undefined ? { bytes: r.bytes } : {}), ...(r.files !== undefined ? { files: r.files } : {}) },
  }))
}
