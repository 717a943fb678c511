/**
 * The upstream sync as a process, beside nginx (deploy/nginx/gateway.sh): watches Consul for the
 * passing instances of SERVICE_NAME, rewrites NGINX_UPSTREAM_FILE and reloads nginx. Exits 1 when
 * nginx is gone, so that the container stops with it; exits 0 on SIGTERM or SIGINT.
 */
import { createServiceResolver } from '../discovery/service-resolver.js'
import { ConfigError } from '../service/config.js'
import { loadUpstreamSyncConfig, type UpstreamSyncConfig } from './config.js'
import { nginxRunning, reloadNginx } from './nginx-process.js'
import { UpstreamSync } from './upstream-sync.js'

const log = (line: string) => console.log(line)

function readConfig(): UpstreamSyncConfig {
  try {
    return loadUpstreamSyncConfig()
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    console.error(`[upstreams] ${e.message}`)
    process.exit(2)
  }
}

const config = readConfig()
const resolver = createServiceResolver({
  consul: config.CONSUL_HTTP_ADDR,
  service: config.SERVICE_NAME,
  ...(config.CONSUL_HTTP_TOKEN ? { token: config.CONSUL_HTTP_TOKEN } : {}),
  log,
})
const sync = new UpstreamSync({
  resolver,
  file: config.NGINX_UPSTREAM_FILE,
  reload: () => reloadNginx(config.NGINX_PID_FILE),
  serverParams: config.NGINX_SERVER_PARAMS,
  log,
})
log(`[upstreams] watching "${config.SERVICE_NAME}" in Consul at ${config.CONSUL_HTTP_ADDR} for ${config.NGINX_UPSTREAM_FILE}`)

const stop = (code: number) => {
  sync.close()
  resolver.close()
  process.exit(code)
}
process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))

// Every 2 s: retry a failed reload, and leave with nginx.
setInterval(() => {
  void nginxRunning(config.NGINX_PID_FILE).then((running) => {
    if (running) return sync.retry()
    log(`[upstreams] nginx (${config.NGINX_PID_FILE}) is not running; exiting`)
    stop(1)
  })
}, 2000)
