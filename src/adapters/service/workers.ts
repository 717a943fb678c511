/**
 * WORKERS > 1: one instance of the service on several cores. The primary process forks the workers
 * (node:cluster), registers the instance with Consul once (from the port the first worker
 * reports), replaces a worker that dies, and on SIGTERM or SIGINT deregisters, then has every
 * worker drain its requests and waits for them. The first worker runs the sweeper; the worker that
 * replaces it takes the role over. The primary opens no store. How the workers share the listening
 * port is the runtime's part (the adapter's `serve`): on Node, node:cluster's primary holds it.
 *
 * Workers sharing one disk store is safe because the store is built for several processes on one
 * folder (src/storage/disk: records by inode, locks across processes).
 */
import cluster, { type Worker } from 'node:cluster'
import { createServer, type AddressInfo } from 'node:net'
import { sharedSigningKeyEnv } from './access.js'
import type { Config } from './config.js'
import type { ConsulRegistration } from './consul-registration.js'
import { aggregateWorkers, type MetricsServer, serveMetrics, workerReady } from './metrics-endpoint.js'
import { registerWithConsul, type Service, type ServiceRoles } from './service.js'

/** What a worker tells the primary once it listens. */
interface Listening {
  type: 'filestorage:listening'
  port: number
  url: string
  stores: string[]
}

const ROLE_VARIABLE = 'FILESTORAGE_WORKER_ROLE'
type Role = 'sweeper' | 'serve'

/** Deaths closer together than this count as a crash loop: the next fork waits a little longer. */
const QUICK_DEATH_MS = 5_000
const MAX_RESTART_DELAY_MS = 10_000

export const isWorker = (): boolean => cluster.isWorker

/** The roles of this process when it is a worker of an instance. */
export function workerRoles(): ServiceRoles {
  return { sweeper: process.env[ROLE_VARIABLE] === 'sweeper', register: false }
}

/** In a worker: tells the primary where the service listens. */
export function reportListening(service: Service): void {
  const message: Listening = {
    type: 'filestorage:listening',
    port: service.http.port,
    url: service.http.url,
    stores: service.stores.names(),
  }
  process.send?.(message)
}

export interface Primary {
  /** Resolves once a worker listens: where, and with which stores. */
  listening: Promise<{ url: string; stores: string[] }>
  /** Deregisters, then stops every worker (each drains its requests) and waits for them. */
  stop(): Promise<void>
}

type Log = (line: string, level?: 'info' | 'warn') => void

export function startPrimary(config: Config, log: Log = console.log): Primary {
  const roles = new Map<Worker, Role>()
  let registration: ConsulRegistration | undefined
  let stopping = false
  let lastDeath = 0
  let restartDelay = 0
  let announce!: (where: { url: string; stores: string[] }) => void
  let cannotListen!: (e: unknown) => void
  const listening = new Promise<{ url: string; stores: string[] }>((resolve, reject) => {
    announce = resolve
    cannotListen = reject
  })
  const shared = sharedSigningKeyEnv(config)

  // Every worker listens on this port (see portForWorkers); settled before the first fork.
  let port = config.PORT
  const fork = (role: Role, replacing?: number) => {
    const worker = cluster.fork({ ...shared, [ROLE_VARIABLE]: role, PORT: String(port) })
    roles.set(worker, role)
    // A message to a worker that has just died (the handing over of a connection, by node:cluster
    // itself) fails with EPIPE or "channel closed" as an 'error' event: unheard, it would end the
    // primary and every worker with it. The death itself is handled on 'exit'.
    worker.on('error', (e: Error) => log(`[filestorage] worker ${worker.process.pid} (${role}): ${e.message}`, 'warn'))
    worker.on('message', (message: Listening) => {
      if (message?.type !== 'filestorage:listening') return
      workerReady(worker)
      if (replacing !== undefined) log(`[filestorage] worker ${worker.process.pid} (${role}) serving in place of ${replacing}`)
      announce({ url: message.url, stores: message.stores })
      registration ??= registerWithConsul(config, { port: message.port, stores: message.stores }, log)
    })
  }

  cluster.on('exit', (worker, code, signal) => {
    const role = roles.get(worker) ?? 'serve'
    roles.delete(worker)
    if (stopping) return
    const now = Date.now()
    restartDelay = now - lastDeath < QUICK_DEATH_MS ? Math.min(Math.max(restartDelay * 2, 250), MAX_RESTART_DELAY_MS) : 0
    lastDeath = now
    log(
      `[filestorage] worker ${worker.process.pid} (${role}) died (${signal ?? `exit code ${code}`}); ` +
        `starting another${restartDelay > 0 ? ` in ${restartDelay} ms` : ''}`,
      'warn',
    )
    setTimeout(() => {
      if (!stopping) fork(role, worker.process.pid)
    }, restartDelay)
  })

  // One scrape for the instance: the primary sums its workers' metrics (metrics-endpoint.ts).
  let metrics: Promise<MetricsServer | undefined> = Promise.resolve(undefined)
  if (config.METRICS_PORT !== undefined || config.METRICS_ON_MAIN_PORT) aggregateWorkers()
  if (config.METRICS_PORT !== undefined) {
    metrics = serveMetrics(config.METRICS_HOST, config.METRICS_PORT, log)
    metrics.then((m) => log(`metrics on ${m!.url} (every worker's)`), cannotListen)
  }

  const forked = portForWorkers(config).then((settled) => {
    port = settled
    for (let i = 0; i < config.WORKERS && !stopping; i++) fork(i === 0 ? 'sweeper' : 'serve')
  }, cannotListen)

  return {
    listening,
    async stop() {
      stopping = true
      await forked
      await registration?.stop()
      const workers = [...roles.keys()]
      const exited = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once('exit', () => resolve()))))
      for (const w of workers) w.process.kill('SIGTERM')
      // Each worker waits SHUTDOWN_TIMEOUT_SECONDS for its requests; one that hangs past that is killed.
      const deadline = setTimeout(() => workers.forEach((w) => w.process.kill('SIGKILL')), config.SHUTDOWN_TIMEOUT_SECONDS * 1000 + 5000)
      await Promise.all(exited)
      clearTimeout(deadline)
      await (await metrics.catch(() => undefined))?.stop()
    },
  }
}

/**
 * The port the workers listen on. node:cluster's primary keeps the listening socket only while some
 * worker has it: with `PORT=0`, if the only worker listening died before another had started, the
 * next one would ask for port 0 again and get another random port, away from the one announced and
 * registered with Consul. So port 0 is turned into a free port of the host once, here, and every
 * worker, replacements included, asks for that one.
 */
async function portForWorkers(config: Config): Promise<number> {
  if (config.PORT !== 0) return config.PORT
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject)
    probe.listen(0, config.HOST, resolve)
  })
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}
