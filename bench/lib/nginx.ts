/**
 * nginx from Debian, the peer for plain HTTP transfers: static GET with sendfile, and WebDAV PUT.
 * It runs from a generated configuration in a temporary prefix, in the foreground, on a free
 * loopback port, with ONE worker process: the same single-process footing as our Node service.
 * Also the gateway, nginx in front of the service as deploy/nginx/nginx.conf configures it.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { startNginx as startTestNginx } from '../../test/helpers/nginx.js'
import { answers, processTree, startProcess, track, waitUntil } from './processes.js'

export const NGINX = process.env.BENCH_NGINX ?? '/usr/sbin/nginx'

export interface NginxOptions {
  /** Served read-only under `/static/` (sendfile). */
  staticRoot: string
  /** Written by WebDAV PUT under `/dav/`; its body temp folder is on the same file system. */
  davRoot: string
  /** Prefix folder for the configuration, logs and temp folders. */
  prefix: string
}

export interface RunningNginx {
  /** `http://127.0.0.1:port` */
  url: string
  /** The worker's pid (the process that serves requests). */
  workerPid: number
  stop(): Promise<void>
}

export function nginxVersion(): string {
  const result = spawnSync(NGINX, ['-v'], { encoding: 'utf8' })
  return result.status === 0 ? result.stderr.trim().replace(/^nginx version: /, '') : 'unavailable'
}

function config(options: NginxOptions, port: number): string {
  const tmp = (name: string) => join(options.prefix, 'tmp', name)
  const user = process.getuid?.() === 0 ? 'user root root;' : ''
  return `${user}
worker_processes 1;
error_log ${join(options.prefix, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  default_type application/octet-stream;
  client_body_temp_path ${tmp('body')};
  proxy_temp_path ${tmp('proxy')};
  fastcgi_temp_path ${tmp('fastcgi')};
  uwsgi_temp_path ${tmp('uwsgi')};
  scgi_temp_path ${tmp('scgi')};
  server {
    listen 127.0.0.1:${port};
    location /static/ {
      alias ${options.staticRoot}/;
    }
    location /dav/ {
      alias ${options.davRoot}/;
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 0;
      client_body_temp_path ${join(options.davRoot, '.tmp')};
    }
  }
}
`
}

export async function startNginx(options: NginxOptions): Promise<RunningNginx> {
  const port = await freePort()
  for (const dir of ['tmp/body', 'tmp/proxy', 'tmp/fastcgi', 'tmp/uwsgi', 'tmp/scgi', 'logs']) {
    mkdirSync(join(options.prefix, dir), { recursive: true })
  }
  mkdirSync(join(options.davRoot, '.tmp'), { recursive: true })
  const conf = join(options.prefix, 'nginx.conf')
  const pidFile = join(options.prefix, 'nginx.pid')
  writeFileSync(conf, config(options, port))
  const started = startProcess(
    NGINX,
    ['-p', options.prefix, '-e', join(options.prefix, 'error.log'), '-c', conf, '-g', `daemon off; pid ${pidFile};`],
    { logFile: join(options.prefix, 'stdout.log') },
  )
  const url = `http://127.0.0.1:${port}`
  await waitUntil('nginx', started, () => answers(`${url}/static/`))
  return { url, workerPid: workerOf(started.pid), stop: () => started.stop('SIGQUIT', 15_000) }
}

/** The one worker of an nginx master. */
function workerOf(masterPid: number): number {
  const worker = processTree(masterPid)[1]
  if (worker === undefined) throw new Error('nginx has no worker process')
  return worker
}

export interface RunningGateway {
  /** `http://127.0.0.1:port`, proxying to the service (`/filestorage/v1/...`). */
  url: string
  /** nginx's master and workers (`worker_processes auto`: one per core). */
  pids: number[]
  stop(): Promise<void>
}

/**
 * The gateway in front of one instance at `upstream` (host:port): the production
 * deploy/nginx/nginx.conf unchanged, started by the tests' helper the way gateway.sh starts it;
 * with `storageDir`, nginx sends the files of an instance with ACCEL_REDIRECT_LOCATION itself.
 */
export async function startGateway(upstream: string, options: { storageDir?: string } = {}): Promise<RunningGateway> {
  const gateway = await startTestNginx(NGINX, `server ${upstream};\n`, options)
  track(gateway.child)
  return { url: gateway.origin, pids: processTree(gateway.child.pid!), stop: () => gateway.dispose() }
}
