/**
 * Keeps one instance registered with its Consul agent: registers at start-up, retries with backoff
 * while the agent is unreachable, and every resync interval checks that the agent still knows the
 * instance, registering again when it does not (an agent restarted without its state, e.g. `-dev`).
 * `stop()` ends that loop first, so no late registration can follow the deregistration.
 */
import Consul from 'consul'
import { inSpan, traceHeaders } from '../../observability/tracing.js'
import { consulBaseUrl } from '../consul/agent-address.js'
import { backoffDelay } from '../consul/backoff.js'
import type { ServiceDefinition } from './service-definition.js'

export interface RegistrationOptions {
  /** CONSUL_HTTP_ADDR: `host:port` or a URL. */
  consulAddr: string
  token?: string
  /** How often to check the registration is still there; also the longest wait between retries. */
  resyncMs: number
  /** Bound on every call to the agent, so a stuck agent cannot hold up start-up or shutdown. */
  requestTimeoutMs?: number
  log: (line: string, level?: 'info' | 'warn') => void
}

const FIRST_RETRY_MS = 250

export class ConsulRegistration {
  readonly #consul: Consul
  readonly #options: Required<Omit<RegistrationOptions, 'token'>>
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #failures = 0
  #registered = false
  #stopped = false

  constructor(
    readonly definition: ServiceDefinition,
    options: RegistrationOptions,
  ) {
    const url = consulBaseUrl(options.consulAddr)
    this.#consul = new Consul({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port),
      secure: url.protocol === 'https:',
      ...(options.token ? { defaults: { token: options.token } } : {}),
    })
    this.#options = { requestTimeoutMs: 3000, ...options }
    // Each call to the agent carries the trace of the sync it belongs to (`traceparent`, when tracing is on).
    ;(this.#consul as unknown as ConsulClient)._ext('onCreate', (request, next) => {
      request.opts.headers = traceHeaders({ ...request.opts.headers })
      next()
    })
  }

  /** True once the agent has accepted the registration (and has not been seen losing it since). */
  get registered(): boolean {
    return this.#registered
  }

  start(): this {
    this.#schedule(0)
    return this
  }

  /** Stops the loop, waits for an attempt under way, then deregisters (bounded by the request timeout). */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
    const { id } = this.definition
    try {
      const request = { id, timeout: this.#options.requestTimeoutMs }
      await inSpan('consul deregister', { 'filestorage.consul.service_id': id }, () => this.#consul.agent.service.deregister(request), { root: true })
      this.#options.log(`[filestorage] consul: deregistered ${id}`)
    } catch (e) {
      this.#options.log(`[filestorage] consul: could not deregister ${id}: ${describe(e)}`, 'warn')
    } finally {
      this.#registered = false
      this.#consul.destroy()
    }
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#running = inSpan('consul sync', { 'filestorage.consul.service_id': this.definition.id }, () => this.#sync(), { root: true }).finally(
        () => (this.#running = undefined),
      )
    }, ms)
    this.#timer.unref()
  }

  async #sync(): Promise<void> {
    let next = this.#options.resyncMs
    try {
      if (!(await this.#agentKnowsUs())) {
        if (this.#registered) this.#options.log(`[filestorage] consul: the agent lost ${this.definition.id}; registering again`)
        this.#registered = false
        await this.#register()
        this.#registered = true
        this.#options.log(`[filestorage] consul: registered ${this.definition.id} with ${this.#options.consulAddr}`)
      }
      this.#failures = 0
    } catch (e) {
      next = backoffDelay(this.#failures++, FIRST_RETRY_MS, this.#options.resyncMs)
      this.#options.log(
        `[filestorage] consul: ${this.#options.consulAddr} did not answer (${describe(e)}); retrying in ${(next / 1000).toFixed(1)}s`,
        'warn',
      )
    }
    if (!this.#stopped) this.#schedule(next)
  }

  async #agentKnowsUs(): Promise<boolean> {
    const request = { filter: `ID == ${JSON.stringify(this.definition.id)}`, timeout: this.#options.requestTimeoutMs }
    const services = await this.#consul.agent.service.list(request)
    return Object.hasOwn(services, this.definition.id)
  }

  async #register(): Promise<void> {
    const d = this.definition
    const request = {
      id: d.id,
      name: d.name,
      address: d.address,
      port: d.port,
      tags: d.tags,
      meta: d.meta,
      check: {
        name: `${d.name} HTTP check`,
        http: d.check.http,
        interval: `${d.check.intervalMs}ms`,
        timeout: `${d.check.timeoutMs}ms`,
        deregistercriticalserviceafter: `${d.check.deregisterAfterMs}ms`,
      },
      timeout: this.#options.requestTimeoutMs,
    }
    await this.#consul.agent.service.register(request)
  }
}

/** The part of the consul client (papi) that lets a hook see every request before it goes. */
interface ConsulClient {
  _ext(event: 'onCreate', hook: (request: { opts: { headers?: Record<string, string> } }, next: () => void) => void): void
}

function describe(e: unknown): string {
  const error = e as { message?: string; code?: string; statusCode?: number }
  return error.message || error.code || String(e)
}
