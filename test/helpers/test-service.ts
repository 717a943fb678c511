/**
 * Starts the node adapter's service in-process on a loopback port, with a temporary disk store; or,
 * for the suites that run on both runtimes, the bun adapter's as a process on Bun.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/adapters/service/config.js'
import { type Service, startService } from '../../src/adapters/node/service.js'
import { type Logger, silentLogger } from '../../src/observability/logger.js'
import { type Runtime, spawnService } from './process-service.js'

/** What the HTTP suites use of a service, wherever it runs. */
export interface HttpService {
  /** `http://127.0.0.1:port/filestorage/v1` */
  api: string
  /** `http://127.0.0.1:port` */
  origin: string
  storageDir: string
  stop(): Promise<void>
}

export interface TestService extends HttpService {
  service: Service
}

/** The settings every test service starts with, before its own. */
const TEST_ENV = { PORT: '0', HOST: '127.0.0.1', LOG_REQUESTS: 'false', SHUTDOWN_TIMEOUT_SECONDS: '5' }

export async function startTestService(
  env: Record<string, string> = {},
  options: { logger?: Logger } = {},
): Promise<TestService> {
  const storageDir = await mkdtemp(join(tmpdir(), 'filestorage-http-'))
  const config = loadConfig({ ...TEST_ENV, STORAGE_DIR: storageDir, ...env })
  const service = await startService(config, options.logger ?? silentLogger())
  return {
    service,
    origin: service.http.url,
    api: `${service.http.url}/filestorage/v1`,
    storageDir,
    async stop() {
      await service.stop()
      await rm(storageDir, { recursive: true, force: true })
    },
  }
}

/**
 * The service on `runtime`, for a suite that runs on both: on Node in-process (startTestService), on
 * Bun as a process of the bun adapter's main (Bun runs the sources as they are).
 */
export async function startServiceOn(runtime: Runtime, env: Record<string, string> = {}): Promise<HttpService> {
  if (runtime === 'node') return startTestService(env)
  const storageDir = await mkdtemp(join(tmpdir(), 'filestorage-http-'))
  const svc = await spawnService({ ...TEST_ENV, STORAGE_DIR: storageDir, ...env }, { runtime })
  return {
    api: svc.api,
    origin: svc.origin,
    storageDir,
    async stop() {
      await svc.stop()
      await rm(storageDir, { recursive: true, force: true })
    },
  }
}
