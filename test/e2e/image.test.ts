/**
 * The container images as CI builds them (scripts/image.sh: podman builds deploy/Dockerfile on a base
 * assembled from Debian and the npm registry, no Docker Hub) and as a runtime runs them (buildah run,
 * see test/helpers/image.ts): production dependencies only, a non-root user, its health check
 * failing and passing as it should, a file round-trip into its volume, SIGTERM draining an upload in
 * flight to exit 0; and the gateway image in front of it, its nginx and upstream sync against a real
 * Consul. Everything on loopback: each container shares the host's network and listens on 127.0.0.1.
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { ConsulAgent, consulBinary, registrationEnv } from '../helpers/consul.js'
import { buildImages, ImageContainer, imageTools, type RunningContainer } from '../helpers/image.js'
import { freePorts } from '../helpers/ports.js'
import { generated, sha256 } from '../helpers/streams.js'
import { waitFor } from '../helpers/wait.js'

const tools = imageTools()
const consulBin = consulBinary()
const MiB = 1024 * 1024
// A cold build assembles the base image (debootstrap, about a minute) and builds both targets.
const BUILD_TIMEOUT_MS = 15 * 60_000
const key = hmacKey('image-test')
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

describe.runIf(tools)('the container images, built by podman and run by buildah', () => {
  let images: { runtime: string; gateway: string }
  const containers: ImageContainer[] = []
  const running: RunningContainer[] = []

  const container = async (image: string) => {
    const c = await ImageContainer.create(tools!, image)
    containers.push(c)
    return c
  }

  beforeAll(async () => {
    images = await buildImages(BUILD_TIMEOUT_MS)
  }, BUILD_TIMEOUT_MS + 10_000)

  afterAll(async () => {
    await Promise.all(running.map((r) => r.kill()))
    await Promise.all(containers.map((c) => c.remove()))
  })

  describe('runtime', () => {
    let app: ImageContainer
    let instance: RunningContainer
    let env: Record<string, string>
    let api: string
    const token = () => hmacToken(key, 'image', ['files:*:disk:'])

    beforeAll(async () => {
      app = await container(images.runtime)
      const [port] = await freePorts(1)
      // The image listens on 0.0.0.0 (HOST); the test stays on loopback, with access control on as in
      // production, on an address of its own that is not 127.0.0.1: the health check must ask HOST.
      env = { PORT: String(port), HOST: '127.0.0.2', AUTH_HMAC_SECRETS: keysEnv(key), LOG_REQUESTS: 'true' }
      api = `http://127.0.0.2:${port}/filestorage/v1`
    })

    it('is what the Dockerfile promises: the user node, an exec-form command, a health check in node', async () => {
      expect(app.config.User).toBe('node')
      // exec form: the command is node itself, so SIGTERM reaches the service (no shell in between).
      expect(app.config.Cmd).toHaveLength(2)
      expect(app.config.Cmd[0]).toBe('node')
      expect(await app.exec(['test', '-f', app.config.Cmd[1]!])).toMatchObject({ code: 0 })
      expect(app.config.Env).toContain('NODE_ENV=production')
      expect(app.config.Volumes).toHaveProperty(['/data'])
      // The slim image has no curl: the health check is node's fetch.
      expect(app.config.Healthcheck?.Test.slice(0, 2)).toEqual(['CMD', 'node'])
    })

    it('holds the production dependencies and none of the development ones, on Node 24', async () => {
      const names = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)]
      const listed = await app.exec(
        ['node', '-e', 'for (const n of JSON.parse(process.env.NAMES)) console.log(n, require("fs").existsSync(`node_modules/${n}/package.json`)); console.log("node", process.version)'],
        { env: { NAMES: JSON.stringify(names) } },
      )
      expect(listed.code).toBe(0)
      const present = new Map(listed.output.trim().split('\n').map((line) => line.split(' ') as [string, string]))
      for (const name of Object.keys(pkg.dependencies)) expect(present.get(name), name).toBe('true')
      for (const name of Object.keys(pkg.devDependencies)) expect(present.get(name), name).toBe('false')
      expect(present.get('node')).toMatch(/^v24\./)
    })

    it('fails its health check while nothing serves, and passes it once the service does', async () => {
      const before = await app.healthcheck({ env })
      expect(before, before.output).toMatchObject({ code: 1 }) // the command's own "unhealthy", not buildah's failure

      instance = app.start({ env })
      running.push(instance)
      await waitFor('the instance to serve', () => instance.output().includes('serving stores disk'), { timeoutMs: 30_000 })
      const after = await app.healthcheck({ env })
      expect(after, after.output).toMatchObject({ code: 0 })
    }, 90_000)

    it('reports unhealthy while a store is down, though the process answers', async () => {
      // A second instance in the same container, its MongoDB on a loopback port nobody listens on.
      const [port, closed] = (await freePorts(2)) as [number, number]
      const degradedEnv = { ...env, PORT: String(port), MONGODB_URI: `mongodb://127.0.0.1:${closed}/`, MONGODB_DB: 'image-test' }
      const degraded = app.start({ env: degradedEnv })
      running.push(degraded)
      await waitFor('the second instance to serve', () => degraded.output().includes('serving stores'), { timeoutMs: 30_000 })
      const check = await fetch(`http://127.0.0.2:${port}/filestorage/v1/check`, { signal: AbortSignal.timeout(30_000) })
      expect(check.status).toBe(503)
      expect(await check.json()).toMatchObject({ stores: { disk: { status: 'up' }, mongo: { status: 'down' } } })
      expect(await app.healthcheck({ env: degradedEnv })).toMatchObject({ code: 1 })
      await degraded.kill()
    }, 90_000)

    it('runs as uid 1000, not root, and may write its volume but not its own code', async () => {
      const status = await readFile(`/proc/${await instance.mainPid()}/status`, 'utf8')
      expect(/^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/)).toEqual(['1000', '1000', '1000', '1000'])
      expect(/^Gid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/)).toEqual(['1000', '1000', '1000', '1000'])
      const writable = await app.exec(['sh', '-c', 'for f in /data /app /app/dist/src/adapters/node/main.js /app/node_modules/hono; do test -w "$f" && echo "$f yes" || echo "$f no"; done'])
      expect(writable.output).toBe('/data yes\n/app no\n/app/dist/src/adapters/node/main.js no\n/app/node_modules/hono no\n')
    })

    it('round-trips a file into its volume, byte for byte', async () => {
      const size = 8 * MiB
      const source = generated(size, 23)
      const put = await fetch(`${api}/disk/upload/image/round-trip.bin`, {
        method: 'PUT',
        headers: bearer(await token()),
        body: source.stream,
        duplex: 'half',
        signal: AbortSignal.timeout(60_000),
      } as RequestInit)
      expect(put.status).toBe(201)
      const digest = source.digest()
      expect(await put.json()).toMatchObject({ size, sha256: digest })

      const get = await fetch(`${api}/disk/download/image/round-trip.bin`, { headers: bearer(await token()), signal: AbortSignal.timeout(60_000) })
      expect(get.status).toBe(200)
      expect(sha256(Buffer.from(await get.arrayBuffer()))).toBe(digest)
      // The image's volume holds the file as-is, written by the image's user.
      const onDisk = await app.exec(['sh', '-c', 'sha256sum /data/image/round-trip.bin && stat -c %u:%g /data/image/round-trip.bin'])
      expect(onDisk.output).toBe(`${digest}  /data/image/round-trip.bin\n1000:1000\n`)
    }, 120_000)

    it('finishes an upload in flight on SIGTERM, refuses new connections, and exits 0', async () => {
      const pid = await instance.mainPid()
      const chunk = new Uint8Array(256 * 1024).fill(7)
      let sent = 0
      let refusedWhileDraining: unknown
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 40) return controller.close()
          if (sent === 10) {
            // What a runtime's stop does: SIGTERM to the container's main process.
            process.kill(pid, 'SIGTERM')
            await waitFor('the instance to stop accepting', () => instance.output().includes('SIGTERM: finishing requests in flight'))
            refusedWhileDraining = await fetch(`${api}/check`, { signal: AbortSignal.timeout(5000) }).then(
              (r) => `answered ${r.status}`,
              (e: Error) => e,
            )
          }
          await new Promise((r) => setTimeout(r, 10))
          sent++
          controller.enqueue(chunk)
        },
      })
      const put = await fetch(`${api}/disk/upload/image/in-flight.bin`, {
        method: 'PUT',
        headers: bearer(await token()),
        body,
        duplex: 'half',
        signal: AbortSignal.timeout(60_000),
      } as RequestInit)
      expect(put.status).toBe(201)
      expect(await put.json()).toMatchObject({ size: 40 * chunk.length })
      expect(refusedWhileDraining).toBeInstanceOf(Error)
      // buildah run exits with the command's status.
      expect(await instance.exit()).toEqual({ code: 0, signal: null })
      expect((await app.exec(['stat', '-c', '%s', '/data/image/in-flight.bin'])).output).toBe(`${40 * chunk.length}\n`)
    }, 120_000)
  })

  describe.runIf(consulBin)('gateway', () => {
    const NAME = 'fs-image'
    let consul: ConsulAgent

    beforeAll(async () => {
      consul = await ConsulAgent.start(consulBin!)
    })

    afterAll(async () => {
      await consul?.dispose()
    })

    it('runs nginx and the upstream sync against Consul, healthy once an instance passes, and stops on SIGTERM', async () => {
      const [port, listen] = (await freePorts(2)) as [number, number]
      const origin = `http://127.0.0.1:${listen}/filestorage/v1`
      const gateway = await container(images.gateway)
      expect(gateway.config.User).toBe('node')
      const env = { CONSUL_HTTP_ADDR: consul.addr, SERVICE_NAME: NAME, GATEWAY_LISTEN: `127.0.0.1:${listen}` }
      const proxy = gateway.start({ env })
      running.push(proxy)
      const status = await readFile(`/proc/${await proxy.mainPid()}/status`, 'utf8')
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe('1000')

      // No instance yet: nginx answers, in the service's error shape, and the health check fails.
      const empty = await waitFor('nginx to answer', () => fetch(`${origin}/check`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined), { timeoutMs: 30_000 })
      expect(empty.status).toBe(503)
      expect(await empty.json()).toMatchObject({ error: { code: 'store_unavailable' } })
      expect(await gateway.healthcheck({ env })).toMatchObject({ code: 1 })

      // An instance from the runtime image registers with Consul; the sync gives it to nginx.
      const app = await container(images.runtime)
      const instance = app.start({
        env: { ...registrationEnv(consul.addr, NAME, '/data'), PORT: String(port), HOST: '127.0.0.1', AUTH_HMAC_SECRETS: keysEnv(key), LOG_REQUESTS: 'true' },
      })
      running.push(instance)
      await consul.waitForPassing(NAME, [`${NAME}-127.0.0.1:${port}`], 60_000)
      const health = await waitFor(
        'the gateway health check to pass',
        async () => {
          const result = await gateway.healthcheck({ env })
          return result.code === 0 && result
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      )
      expect(health.code).toBe(0)

      const content = 'through the gateway image'
      const put = await fetch(`${origin}/disk/upload/gateway.txt`, { method: 'PUT', headers: bearer(await hmacToken(key, 'image', ['files:*:disk:'])), body: content })
      expect(put.status).toBe(201)
      expect((await app.exec(['cat', '/data/gateway.txt'])).output).toBe(content)
      // The instance served it, and nginx's access log (the container's stdout) names it as the upstream.
      await waitFor('the instance to log the upload', () => instance.output().includes('PUT /filestorage/v1/disk/upload/gateway.txt 201'))
      await waitFor('nginx to log it', () => proxy.output().split('\n').some((l) => l.includes('/disk/upload/gateway.txt') && l.includes(`127.0.0.1:${port}`)))

      // A runtime's stop: SIGTERM to gateway.sh, which stops the sync and nginx gracefully and exits 0.
      process.kill(await proxy.mainPid(), 'SIGTERM')
      expect(await proxy.exit()).toEqual({ code: 0, signal: null })
      process.kill(await instance.mainPid(), 'SIGTERM')
      expect(await instance.exit()).toEqual({ code: 0, signal: null })
      // It deregistered on the way out.
      expect(await consul.all(NAME)).toEqual([])
    }, 180_000)
  })
})
