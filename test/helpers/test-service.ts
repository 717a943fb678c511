/**
 * Starts the node adapter's service in-process on a loopback port, with a temporary disk store.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/adapters/service/config.js'
import { type Service, startService } from '../../src/adapters/node/service.js'

export interface TestService {
  service: Service
  /** `http://127.0.0.1:port/filestorage/v1` */
  api: string
  /** `http://127.0.0.1:port` */
  origin: string
  storageDir: string
  stop(): Promise<void>
}

export async function startTestService(
  env: Record<string, string> = {},
  options: { log?: (line: string) => void } = {},
): Promise<TestService> {
  const storageDir = await mkdtemp(join(tmpdir(), 'filestorage-http-'))
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    STORAGE_DIR: storageDir,
    LOG_REQUESTS: 'false',
    SHUTDOWN_TIMEOUT_SECONDS: '5',
    ...env,
  })
  const service = await startService(config, options.log ?? (() => {}))
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
