/**
 * Resolves a service name to its healthy instances through a Consul agent, and picks one per
 * request in round robin.
 *
 * Only instances whose checks all pass are returned (`/v1/health/service/<name>?passing`). The list
 * is kept current by a blocking query (a "watch": Consul answers as soon as the list changes, or
 * after `waitSeconds`), so picking an instance costs no request to Consul. Without the watch, a list
 * is reused for `cacheMs`. When Consul cannot be reached, the last list it gave is used; with none
 * yet, the call fails with a DiscoveryError.
 */
import { consulBaseUrl } from '../consul/agent-address.js'
import { backoffDelay, sleep } from '../consul/backoff.js'
import { hostPort } from '../host-port.js'

export interface ServiceInstance {
  /** Consul's service id, e.g. `filestorage-10.0.0.5:8081`. */
  id: string
  name: string
  node: string
  address: string
  port: number
  /** `http://address:port` */
  origin: string
  tags: string[]
  meta: Record<string, string>
}

export interface ServiceResolverOptions {
  /** The Consul agent, as in CONSUL_HTTP_ADDR: `host:port` or a URL. */
  consul: string
  /** The service name, e.g. `filestorage`. */
  service: string
  /** Only instances carrying this tag. */
  tag?: string
  /** ACL token (CONSUL_HTTP_TOKEN). */
  token?: string
  /** How long a list from a one-off query is reused; default 2000. */
  cacheMs?: number
  /** Keep the list current with a blocking query; default true. Call `close()` to end it. */
  watch?: boolean
  /** Longest wait of one blocking query; default 30. */
  waitSeconds?: number
  /** Bound on a one-off query; default 5000. */
  requestTimeoutMs?: number
  fetch?: typeof fetch
  log?: (line: string) => void
}

export type DiscoveryErrorCode = 'consul_unreachable' | 'consul_error' | 'no_instances' | 'closed'

export class DiscoveryError extends Error {
  override name = 'DiscoveryError'
  constructor(
    readonly code: DiscoveryErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** One entry of `/v1/health/service/<name>`, the fields used here. */
interface HealthEntry {
  Node: { Node: string; Address: string }
  Service: { ID: string; Service: string; Address: string; Port: number; Tags: string[] | null; Meta: Record<string, string> | null }
}

type Listener = (instances: ServiceInstance[]) => void

export class ServiceResolver {
  readonly #options: Required<Omit<ServiceResolverOptions, 'tag' | 'token'>> & Pick<ServiceResolverOptions, 'tag' | 'token'>
  readonly #base: URL
  readonly #closing = new AbortController()
  readonly #listeners = new Set<Listener>()
  #list: ServiceInstance[] | undefined
  #listAt = 0
  #index = 0n
  #watching = false
  #watchLive = false
  #refreshing: Promise<ServiceInstance[]> | undefined
  #next = 0

  constructor(options: ServiceResolverOptions) {
    this.#options = {
      cacheMs: 2000,
      watch: true,
      waitSeconds: 30,
      requestTimeoutMs: 5000,
      fetch: globalThis.fetch,
      log: () => {},
      ...options,
    }
    this.#base = consulBaseUrl(options.consul)
  }

  get service(): string {
    return this.#options.service
  }

  /** The healthy instances, sorted by id. */
  async instances(): Promise<ServiceInstance[]> {
    if (this.#closing.signal.aborted) throw new DiscoveryError('closed', 'this resolver is closed')
    const list = this.#list
    if (list && (this.#watchLive || Date.now() - this.#listAt < this.#options.cacheMs)) return list
    try {
      this.#refreshing ??= this.#refresh().finally(() => (this.#refreshing = undefined))
      return await this.#refreshing
    } catch (e) {
      if (this.#list) return this.#list // Consul is away: the last list it gave is the best there is
      throw e
    } finally {
      if (this.#options.watch) this.#startWatch()
    }
  }

  /** The list as last seen, without asking Consul; empty before the first answer. */
  peek(): ServiceInstance[] {
    return this.#list ?? []
  }

  /** The next healthy instance, round robin; a DiscoveryError `no_instances` when there is none. */
  async pick(): Promise<ServiceInstance> {
    const list = await this.instances()
    if (list.length === 0) {
      throw new DiscoveryError('no_instances', `no healthy instance of "${this.#options.service}" in Consul`)
    }
    return list[this.#next++ % list.length]!
  }

  /**
   * Calls `listener` with the current list as soon as there is one, then on every change. Starts the
   * watch. Returns the function that unsubscribes.
   */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener)
    if (this.#list) {
      const list = this.#list
      queueMicrotask(() => listener(list))
    }
    this.#startWatch()
    return () => this.#listeners.delete(listener)
  }

  /** Ends the watch and any query under way. */
  close(): void {
    this.#closing.abort()
    this.#listeners.clear()
  }

  async #refresh(): Promise<ServiceInstance[]> {
    const { instances, index } = await this.#query()
    if (!this.#watching) this.#index = index
    this.#accept(instances)
    return instances
  }

  #accept(instances: ServiceInstance[]): void {
    const changed = !this.#list || key(this.#list) !== key(instances)
    this.#list = instances
    this.#listAt = Date.now()
    if (!changed) return
    for (const listener of this.#listeners) {
      try {
        listener(instances)
      } catch (e) {
        this.#options.log(`[discovery] a listener of "${this.#options.service}" failed: ${(e as Error).message}`)
      }
    }
  }

  #startWatch(): void {
    if (this.#watching || this.#closing.signal.aborted) return
    this.#watching = true
    void this.#watch()
  }

  async #watch(): Promise<void> {
    let failures = 0
    while (!this.#closing.signal.aborted) {
      try {
        const { instances, index } = await this.#query(this.#index)
        // An index that goes backwards means Consul's state was reset (an agent restarted): start over.
        this.#index = index < this.#index ? 0n : index
        this.#watchLive = true
        if (failures > 0) this.#options.log(`[discovery] Consul answers again for "${this.#options.service}"`)
        failures = 0
        this.#accept(instances)
        // Index 0 would make every query return at once: pace the loop rather than spin.
        if (index === 0n) await sleep(1000, this.#closing.signal)
      } catch (e) {
        if (this.#closing.signal.aborted) break
        this.#watchLive = false
        if (failures === 0) this.#options.log(`[discovery] watch of "${this.#options.service}" failed: ${(e as Error).message}`)
        await sleep(backoffDelay(failures++, 250, 10_000), this.#closing.signal)
      }
    }
    this.#watchLive = false
  }

  /** One query; with an index above 0, a blocking one that returns when the list changes. */
  async #query(index = 0n): Promise<{ instances: ServiceInstance[]; index: bigint }> {
    const url = new URL(`v1/health/service/${encodeURIComponent(this.#options.service)}`, this.#base)
    url.searchParams.set('passing', 'true')
    if (this.#options.tag) url.searchParams.set('tag', this.#options.tag)
    const blocking = index > 0n
    if (blocking) {
      url.searchParams.set('index', String(index))
      url.searchParams.set('wait', `${this.#options.waitSeconds}s`)
    }
    // Consul may answer a blocking query up to wait/16 late; allow that and a margin.
    const timeoutMs = blocking ? this.#options.waitSeconds * 1000 * 1.1 + 5000 : this.#options.requestTimeoutMs
    let response: Response
    try {
      response = await this.#options.fetch(url, {
        headers: this.#options.token ? { 'X-Consul-Token': this.#options.token } : {},
        signal: AbortSignal.any([this.#closing.signal, AbortSignal.timeout(timeoutMs)]),
      })
    } catch (e) {
      throw new DiscoveryError('consul_unreachable', `Consul at ${this.#base.host} did not answer: ${reason(e)}`, { cause: e })
    }
    if (!response.ok) {
      const text = (await response.text().catch(() => '')).trim()
      throw new DiscoveryError('consul_error', `Consul answered ${response.status}${text ? `: ${text}` : ''}`)
    }
    const entries = (await response.json()) as HealthEntry[]
    const next = BigInt(response.headers.get('x-consul-index') ?? '0')
    return { instances: entries.map(instanceOf).sort((a, b) => a.id.localeCompare(b.id)), index: next > 0n ? next : 0n }
  }
}

export function createServiceResolver(options: ServiceResolverOptions): ServiceResolver {
  return new ServiceResolver(options)
}

function instanceOf(entry: HealthEntry): ServiceInstance {
  const address = entry.Service.Address || entry.Node.Address
  return {
    id: entry.Service.ID,
    name: entry.Service.Service,
    node: entry.Node.Node,
    address,
    port: entry.Service.Port,
    origin: `http://${hostPort(address, entry.Service.Port)}`,
    tags: entry.Service.Tags ?? [],
    meta: entry.Service.Meta ?? {},
  }
}

/** What makes two lists the same for the listeners: ids and addresses. */
function key(list: ServiceInstance[]): string {
  return list.map((i) => `${i.id}@${i.origin}`).join(',')
}

function reason(e: unknown): string {
  const error = e as Error & { cause?: { code?: string; message?: string } }
  return error.cause?.code ?? error.cause?.message ?? error.message
}
