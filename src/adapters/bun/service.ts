/**
 * The service on Bun (src/adapters/service), served by Bun.serve, with Bun's request body stream
 * behind the body idle timeout and disk-store downloads sent by Bun itself (local-files.ts).
 * `main.ts` runs it as a process.
 */
import type { Context } from 'hono'
import type { Logger } from '../../observability/logger.js'
import type { Config } from '../service/config.js'
import { type Runtime, type Service as AnyService, type ServiceRoles, startService as startOn } from '../service/service.js'
import { isWorker } from '../service/workers.js'
import { bunLocalFiles } from './local-files.js'
import { bunRequestBody } from './request-body.js'
import { type BunEnv, type RunningServer, serve } from './server.js'

export { VERSION } from '../service/service.js'

export type Service = AnyService<RunningServer>

export const bunRuntime: Runtime<RunningServer> = {
  // A worker of an instance shares the port with the others (SO_REUSEPORT): see workers.ts.
  serve: (fetch, options) => serve(fetch, { ...options, reusePort: isWorker() }),
  middleware: (config, counter) => [bunRequestBody({ idleTimeoutMs: config.BODY_IDLE_TIMEOUT_SECONDS * 1000, ...(counter ? { counter } : {}) })],
  localFiles: bunLocalFiles,
  remoteAddress: (c: Context) => {
    const env = c.env as BunEnv | undefined
    return env?.server.requestIP(env.request)?.address
  },
}

export function startService(config: Config, logger?: Logger, roles?: ServiceRoles): Promise<Service> {
  return startOn(bunRuntime, config, logger, roles)
}
