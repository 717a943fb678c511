/**
 * A real Consul agent (`consul agent -dev`) that a suite runs itself, on loopback ports of its own,
 * so that it can stop, restart or hold it back; and the same HTTP API on the run's agent.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnChild, type TestChild } from './child-process.js'
import { requireBinary } from './external.js'
import { freePorts } from './ports.js'
import { GiveUp, waitFor } from './wait.js'

/** CONSUL_BIN, else the binary scripts/test-services.sh builds; undefined (suite skipped) when missing. */
export function consulBinary(): string | undefined {
  const cache = process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache', 'filestorage')
  return requireBinary('CONSUL_BIN', [join(cache, 'bin', 'consul')], 'Consul')
}

export interface ConsulPorts {
  http: number
  dns: number
  grpc: number
  server: number
  serfLan: number
  serfWan: number
}

export async function consulPorts(): Promise<ConsulPorts> {
  const [http, dns, grpc, server, serfLan, serfWan] = (await freePorts(6, { udp: true })) as [number, number, number, number, number, number]
  return { http, dns, grpc, server, serfLan, serfWan }
}

/** One entry of `/v1/health/service/<name>`. */
export interface HealthEntry {
  Node: { Node: string; Address: string }
  Service: { ID: string; Service: string; Address: string; Port: number; Tags: string[]; Meta: Record<string, string> }
  Checks: HealthCheck[]
}

export interface HealthCheck {
  CheckID: string
  ServiceID: string
  Status: 'passing' | 'warning' | 'critical'
  Output: string
  Type: string
  /** In /v1/agent/checks. */
  Interval?: string
  Timeout?: string
}

/** What the tests ask of an agent's HTTP API, at `addr` (`127.0.0.1:port`, as CONSUL_HTTP_ADDR takes it). */
export class ConsulApi {
  constructor(readonly addr: string) {}

  async get<T>(path: string): Promise<T> {
    const response = await fetch(`http://${this.addr}${path}`, { signal: AbortSignal.timeout(5000) })
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`)
    return (await response.json()) as T
  }

  async put(path: string, body?: unknown): Promise<void> {
    const response = await fetch(`http://${this.addr}${path}`, {
      method: 'PUT',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(5000),
    })
    if (!response.ok) throw new Error(`PUT ${path}: ${response.status} ${await response.text()}`)
  }

  /** Every registered instance of `service`, whatever its health. */
  all(service: string): Promise<HealthEntry[]> {
    return this.get(`/v1/health/service/${service}`)
  }

  /** The instances of `service` whose checks pass. */
  passing(service: string): Promise<HealthEntry[]> {
    return this.get(`/v1/health/service/${service}?passing=true`)
  }

  /** Waits until the passing instances of `service` are exactly `ids`. */
  async waitForPassing(service: string, ids: string[], timeoutMs = 20_000): Promise<HealthEntry[]> {
    const want = [...ids].sort().join(',')
    return waitFor(
      `passing instances of ${service} to be [${want}]`,
      async () => {
        const entries = await this.passing(service)
        return entries.map((e) => e.Service.ID).sort().join(',') === want && entries
      },
      { timeoutMs },
    )
  }
}

export class ConsulAgent extends ConsulApi {
  #process: TestChild | undefined

  private constructor(
    readonly bin: string,
    readonly ports: ConsulPorts,
    readonly dataDir: string,
  ) {
    super(`127.0.0.1:${ports.http}`)
  }

  /** Starts an agent; with `ports`, on those (ports handed out earlier, to start Consul late). */
  static async start(bin: string, ports?: ConsulPorts): Promise<ConsulAgent> {
    const agent = new ConsulAgent(bin, ports ?? (await consulPorts()), await mkdtemp(join(tmpdir(), 'filestorage-consul-')))
    await agent.start()
    return agent
  }

  get running(): boolean {
    return this.#process?.running() ?? false
  }

  output(): string {
    return this.#process?.output() ?? ''
  }

  async start(): Promise<void> {
    const p = this.ports
    const agent = spawnChild(
      this.bin,
      [
        'agent', '-dev', '-bind=127.0.0.1', '-client=127.0.0.1', '-node=filestorage-test', `-data-dir=${this.dataDir}`,
        `-http-port=${p.http}`, `-dns-port=${p.dns}`, `-grpc-port=${p.grpc}`, '-grpc-tls-port=-1',
        `-server-port=${p.server}`, `-serf-lan-port=${p.serfLan}`, `-serf-wan-port=${p.serfWan}`,
        '-hcl=disable_update_check = true', '-log-level=warn',
      ],
    )
    this.#process = agent
    await waitFor(
      'the Consul agent to elect itself leader',
      async () => {
        if (!agent.running()) {
          throw new GiveUp(`consul exited (${agent.child.exitCode ?? agent.child.signalCode}):\n${agent.output()}`)
        }
        const leader = await this.get<string>('/v1/status/leader')
        return leader !== '' && leader
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )
  }

  /** Stops the agent (SIGTERM, SIGKILL after 10 s). */
  async stop(): Promise<void> {
    await this.#process?.stop('SIGTERM', 10_000)
  }

  /**
   * Stops the agent, removes its data dir and starts it again: an agent that lost its state. (With
   * its data dir, even a `-dev` agent restores the services registered through its API.)
   */
  async restartWithoutState(): Promise<void> {
    await this.stop()
    await rm(this.dataDir, { recursive: true, force: true })
    await mkdir(this.dataDir)
    await this.start()
  }

  async dispose(): Promise<void> {
    await this.stop()
    await rm(this.dataDir, { recursive: true, force: true })
  }
}

/**
 * The environment of an instance registering with `agent` under `name`: loopback address, checks
 * every second and a fast resync, so that tests see changes within a few seconds.
 */
export function registrationEnv(consulAddr: string, name: string, storageDir: string): Record<string, string> {
  return {
    CONSUL_HTTP_ADDR: consulAddr,
    SERVICE_NAME: name,
    SERVICE_ADDRESS: '127.0.0.1',
    CONSUL_CHECK_INTERVAL: '1s',
    CONSUL_CHECK_TIMEOUT: '1s',
    CONSUL_RESYNC_INTERVAL: '500ms',
    STORAGE_DIR: storageDir,
  }
}
