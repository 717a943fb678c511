/**
 * A real nginx that a suite runs itself, with the production configuration deploy/nginx/nginx.conf
 * copied unchanged into a temporary prefix; only listen.conf (a loopback port), upstreams.conf and
 * accel.conf (the disk store's folder for X-Accel-Redirect, when given) differ. Started the way deploy/nginx/gateway.sh starts it, but in the foreground (`daemon off`)
 * so the test owns the process.
 */
import type { ChildProcess } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnChild } from './child-process.js'
import { requireBinary } from './external.js'
import { freePorts } from './ports.js'
import { GiveUp, waitFor } from './wait.js'

const NGINX_CONF = fileURLToPath(new URL('../../deploy/nginx/nginx.conf', import.meta.url))

/** NGINX_BIN, else nginx where Debian puts it; undefined (suite skipped) when missing. */
export function nginxBinary(): string | undefined {
  const onPath = (process.env.PATH ?? '').split(':').filter(Boolean).map((dir) => join(dir, 'nginx'))
  return requireBinary('NGINX_BIN', ['/usr/sbin/nginx', ...onPath], 'nginx')
}

/** accel.conf as gateway.sh writes it: the internal location's folder, or 404 (the service sends the bytes). */
export const accelConf = (storageDir?: string): string => (storageDir ? `alias ${storageDir}/;\n` : 'return 404;\n')

export interface NginxProcess {
  child: ChildProcess
  /** `http://127.0.0.1:port` */
  origin: string
  prefix: string
  upstreamsFile: string
  pidFile: string
  /** What nginx wrote to stderr: its error log. */
  output(): string
  /** Its access log: one line per request, with the instance that answered. */
  accessLog(): Promise<string>
  /** Graceful stop (SIGQUIT: requests in flight finish), SIGKILL after 10 s; removes the prefix. */
  dispose(): Promise<void>
}

export async function startNginx(
  bin: string,
  upstreams = 'server 127.0.0.1:9 down;\n',
  options: { storageDir?: string } = {},
): Promise<NginxProcess> {
  const prefix = await mkdtemp(join(tmpdir(), 'filestorage-nginx-'))
  const confDir = join(prefix, 'conf')
  await mkdir(confDir)
  await mkdir(join(prefix, 'logs'))
  const conf = join(confDir, 'nginx.conf')
  const upstreamsFile = join(confDir, 'upstreams.conf')
  const pidFile = join(prefix, 'nginx.pid')
  const [port] = await freePorts(1)
  await copyFile(NGINX_CONF, conf)
  await writeFile(join(confDir, 'listen.conf'), `listen 127.0.0.1:${port};\n`)
  await writeFile(upstreamsFile, upstreams)
  await writeFile(join(confDir, 'accel.conf'), accelConf(options.storageDir))

  const nginx = spawnChild(bin, ['-p', `${prefix}/`, '-c', conf, '-e', 'stderr', '-g', `daemon off; pid ${pidFile};`])
  const { child, output } = nginx

  let failed: Error | undefined
  void nginx.exited.then(({ code, signal }) => (failed = new GiveUp(`nginx exited (${code ?? signal}):\n${output()}`)))
  await waitFor(
    'nginx to listen',
    () => {
      if (failed) throw failed
      return new Promise<boolean>((resolve) => {
        const socket = connect(port!, '127.0.0.1')
        socket.once('connect', () => {
          socket.destroy()
          resolve(true)
        })
        socket.once('error', () => resolve(false))
      })
    },
    { timeoutMs: 15_000 },
  )

  return {
    child,
    origin: `http://127.0.0.1:${port}`,
    prefix,
    upstreamsFile,
    pidFile,
    output,
    accessLog: () => readFile(join(prefix, 'logs', 'access.log'), 'utf8'),
    async dispose() {
      await nginx.stop('SIGQUIT', 10_000) // graceful: requests in flight finish
      await rm(prefix, { recursive: true, force: true })
    },
  }
}
