/**
 * What the operator configures for events (docs/events.md, "Configuration"): the endpoints events
 * are delivered to, the Redis stream they are appended to, the blocking hooks, and the bounds.
 * Built from the environment and the EVENTS_CONFIG file by the service (adapters/service).
 */
import { type EventBody, type EventType, isWithin } from '../storage/index.js'

export interface EndpointOptions {
  /** Names its queue, its dead letters and its state: `[A-Za-z0-9][A-Za-z0-9_-]*`. */
  name: string
  url: string
  /** Signing keys (decoded `whsec_` secrets); every try is signed with each. */
  keys: Buffer[]
  filter: EventFilter
  /** One try's bound, connecting to the last byte of the answer. */
  timeoutMs: number
}

/** Which events a consumer takes; an absent list takes everything. */
export interface EventFilter {
  stores?: string[]
  /** Path prefixes, matched by whole segments (`photos` takes `photos/a.jpg`, never `photos2/a.jpg`). */
  prefixes?: string[]
  /** Types, or `file.*`, `upload.*`, `*`. */
  types?: string[]
}

export interface HookOptions {
  url: string
  keys: Buffer[]
  timeoutMs: number
  /** When the hook does not answer (or answers 5xx): refuse the change (`503 hook_unavailable`) or let it through. */
  onFailure: 'refuse' | 'allow'
}

export interface RedisStreamOptions {
  url: string
  stream: string
  /** XADD … MAXLEN ~ this: the stream keeps about this many entries. */
  maxLen: number
}

export interface EventsOptions {
  endpoints: EndpointOptions[]
  redis?: RedisStreamOptions
  hooks: { preUpload?: HookOptions; preDelete?: HookOptions }
  /** An event is retried until it is this old, then dead-lettered. */
  retryForMs: number
  /** The longest wait between two tries. */
  retryDelayMaxMs: number
  /** Entries a store keeps at most (to deliver, and dead letters) before changes are refused with 507. */
  maxBacklog: number
}

/** Whether an event of `store` passes `filter`. */
export function accepts(filter: EventFilter, store: string, event: EventBody): boolean {
  if (filter.stores && !filter.stores.includes(store)) return false
  if (filter.types && !filter.types.some((t) => typeMatches(t, event.type))) return false
  if (!filter.prefixes) return true
  const { path, from, kind } = event.data
  const paths = from === undefined ? [path] : [path, from]
  // A folder moved or deleted concerns a prefix below it too.
  return filter.prefixes.some((prefix) => paths.some((p) => isWithin(p, prefix) || (kind === 'directory' && isWithin(prefix, p))))
}

function typeMatches(pattern: string, type: EventType): boolean {
  if (pattern === '*' || pattern === type) return true
  return pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1))
}
