/**
 * The service on Node (src/adapters/service), served by node:http through @hono/node-server, with
 * request bodies read from Node's own IncomingMessage. `main.ts` runs it as a process; tests start
 * it in-process.
 */
import { getConnInfo } from '@hono/node-server/conninfo'
import type { Logger } from '../../observability/logger.js'
import type { Config } from '../service/config.js'
import { type Runtime, type Service as AnyService, type ServiceRoles, startService as startOn } from '../service/service.js'
import { nodeRequestBody } from './request-body.js'
import { type RunningServer, serve } from './server.js'

export { VERSION } from '../service/service.js'

export type Service = AnyService<RunningServer>

export const nodeRuntime: Runtime<RunningServer> = {
  serve,
  middleware: (config, counter) => [nodeRequestBody({ idleTimeoutMs: config.BODY_IDLE_TIMEOUT_SECONDS * 1000, ...(counter ? { counter } : {}) })],
  remoteAddress: (c) => getConnInfo(c).remote.address,
}

export function startService(config: Config, logger?: Logger, roles?: ServiceRoles): Promise<Service> {
  return startOn(nodeRuntime, config, logger, roles)
}
