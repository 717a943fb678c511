/**
 * Keeps nginx's upstream file in step with Consul: on every change of the passing instances it
 * rewrites the file (atomically: nginx never reads half a file) and reloads nginx. Changes that
 * arrive during a write are folded into one more write of the latest list. A reload that fails
 * (nginx not up yet) or a write that fails is tried again on the next change or `retry()`.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import type { ServiceInstance, ServiceResolver } from '../discovery/service-resolver.js'
import { upstreamServers } from './upstream-servers.js'

export interface UpstreamSyncOptions {
  resolver: ServiceResolver
  /** The file `upstream filestorage { include ...; }` reads. */
  file: string
  reload: () => Promise<void>
  /** Appended to every `server` line; DEFAULT_SERVER_PARAMS by default. */
  serverParams?: string
  log?: (line: string) => void
}

export class UpstreamSync {
  readonly #options: UpstreamSyncOptions
  readonly #log: (line: string) => void
  readonly #unsubscribe: () => void
  #latest: ServiceInstance[] | undefined
  #busy: Promise<void> | undefined
  #reloadOwed = false
  #closed = false

  constructor(options: UpstreamSyncOptions) {
    this.#options = options
    this.#log = options.log ?? (() => {})
    this.#unsubscribe = options.resolver.subscribe((instances) => {
      this.#latest = instances
      this.#kick()
    })
  }

  /** Resolves when every change seen so far is written and nginx was asked to reload. */
  async settled(): Promise<void> {
    while (this.#busy) await this.#busy
  }

  /** Writes and reloads again if the last attempt failed. */
  retry(): void {
    if (this.#reloadOwed || this.#latest) this.#kick()
  }

  close(): void {
    this.#closed = true
    this.#unsubscribe()
  }

  #kick(): void {
    this.#busy ??= this.#drain().finally(() => (this.#busy = undefined))
  }

  async #drain(): Promise<void> {
    while (!this.#closed && (this.#latest || this.#reloadOwed)) {
      const instances = this.#latest
      this.#latest = undefined
      try {
        if (instances && (await this.#write(instances))) this.#reloadOwed = true
        if (this.#reloadOwed) {
          await this.#options.reload()
          this.#reloadOwed = false
          this.#log(`[upstreams] nginx reloaded with ${describe(instances)}`)
        }
      } catch (e) {
        this.#latest ??= instances
        this.#log(`[upstreams] ${(e as Error).message}; will try again`)
        return
      }
    }
  }

  /** Writes the file if its content changes; true when it did. */
  async #write(instances: ServiceInstance[]): Promise<boolean> {
    const { file, resolver, serverParams } = this.#options
    const content = upstreamServers(resolver.service, instances, serverParams)
    const current = await readFile(file, 'utf8').catch(() => undefined)
    if (current === content) return false
    const temporary = `${file}.${process.pid}.tmp`
    await writeFile(temporary, content)
    await rename(temporary, file)
    return true
  }
}

function describe(instances: ServiceInstance[] | undefined): string {
  if (!instances) return 'the current upstreams'
  return instances.length ? instances.map((i) => `${i.address}:${i.port}`).join(', ') : 'no instance'
}
