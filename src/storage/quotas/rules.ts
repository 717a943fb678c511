/**
 * Quota rules: limits in bytes and in files on the whole of a store (prefix `''`) or on a path
 * prefix, where a segment `{sub}` stands for any one segment: `users/{sub}` gives every folder under
 * `users` a limit of its own (each user's, when rights grant `users/<sub>` to the principal `sub`).
 * Each prefix a rule gives is a bucket (bucket.ts); a path counts in every bucket whose prefix covers
 * it. A rule without `{sub}` wins over one with it for the same prefix (`users/ana` beside
 * `users/{sub}` gives ana her own limits).
 */
import { StorageError } from '../errors.js'
import { isWithin, parsePath, ROOT } from '../paths.js'
import type { Limits } from './bucket.js'

export const SUB = '{sub}'

export interface QuotaRule {
  /** The prefix, `{sub}` standing for any one segment; `''` for the whole store. */
  prefix: string
  limits: Limits
}

/** A bucket a rule gives a path: the prefix it limits, the rule's own prefix, the limits. */
export interface Bucket {
  prefix: string
  rule: string
  limits: Limits
}

/** A rule's prefix through the path rules, `{sub}` allowed as a whole segment only. Throws `invalid_path`. */
export function parseRulePrefix(raw: string): string {
  const trimmed = raw.replace(/^\/+|\/+$/g, '')
  if (trimmed === '') return ROOT
  const segments = trimmed.split('/').map((segment) => {
    if (segment === SUB) return SUB
    if (segment.includes('{') || segment.includes('}')) {
      throw new StorageError('invalid_path', `"${segment}": a quota prefix takes {sub} as a whole segment only`)
    }
    return parsePath(segment)
  })
  return segments.join('/')
}

export class QuotaRules {
  readonly #rules: { rule: QuotaRule; segments: string[]; pattern: boolean }[]

  constructor(rules: QuotaRule[]) {
    const seen = new Set<string>()
    this.#rules = rules.map((rule) => {
      if (seen.has(rule.prefix)) throw new Error(`two quotas on the prefix "${rule.prefix}"`)
      seen.add(rule.prefix)
      const segments = rule.prefix === ROOT ? [] : rule.prefix.split('/')
      return { rule, segments, pattern: segments.includes(SUB) }
    })
  }

  get size(): number {
    return this.#rules.length
  }

  /** The buckets a file at `path` counts in (a folder at `path`: those that cover all of it), the broadest first. */
  covering(path: string): Bucket[] {
    const segments = path === ROOT ? [] : path.split('/')
    const found = new Map<string, Bucket>()
    for (const { rule, segments: pattern, pattern: isPattern } of this.#rules) {
      if (pattern.length > segments.length) continue
      if (!pattern.every((s, i) => s === SUB || s === segments[i])) continue
      const prefix = segments.slice(0, pattern.length).join('/')
      if (isPattern && found.has(prefix)) continue // a literal rule on the same prefix wins
      found.set(prefix, { prefix, rule: rule.prefix, limits: rule.limits })
    }
    return [...found.values()].sort((a, b) => a.prefix.length - b.prefix.length)
  }

  /** The bucket of `prefix`, if a rule gives one there. */
  bucket(prefix: string): Bucket | undefined {
    return this.covering(prefix).find((b) => b.prefix === prefix)
  }

  /** Whether buckets may lie strictly under `dir` (a rule deeper than it, that could match below it). */
  mayHaveBucketsUnder(dir: string): boolean {
    const segments = dir === ROOT ? [] : dir.split('/')
    return this.#rules.some(
      ({ segments: pattern }) => pattern.length > segments.length && segments.every((s, i) => pattern[i] === SUB || pattern[i] === s),
    )
  }

  /** The prefixes of rules without `{sub}`: buckets known before any file is written. */
  literalPrefixes(): string[] {
    return this.#rules.filter((r) => !r.pattern).map((r) => r.rule.prefix)
  }
}

/** Whether a bucket at `prefix` lies strictly under `dir`. */
export const isUnder = (prefix: string, dir: string): boolean => prefix !== dir && isWithin(prefix, dir)
