/**
 * The fleet as deployed: a real Consul agent, two instances (processes) sharing one storage folder,
 * the upstream sync (src/adapters/nginx/main.ts) writing nginx's upstream file from Consul, and a
 * real nginx running deploy/nginx/nginx.conf unchanged. Proves streaming both ways through nginx at
 * 256 MiB, requests spread over both instances, and that an instance killed mid-run costs no GET.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFileStorageClient } from '../../src/adapters/discovery/index.js'
import { ConsulAgent, consulBinary, registrationEnv } from '../helpers/consul.js'
import { type NginxProcess, nginxBinary, startNginx } from '../helpers/nginx.js'
import { type ProcessService, spawnService } from '../helpers/process-service.js'
import { generated, sha256 } from '../helpers/streams.js'
import { waitFor } from '../helpers/wait.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const consulBin = consulBinary()
const nginxBin = nginxBinary()
const NAME = 'fs-fleet'
const MiB = 1024 * 1024

/** How many requests for `path` with `status` an instance logged (LOG_REQUESTS: a JSON line each, `msg` "METHOD path status"). */
function served(svc: ProcessService, method: string, path: string, status = 200): number {
  const msg = `${method} /filestorage/v1/disk/download/${path} ${status}`
  return svc
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{') && (JSON.parse(l) as { msg?: string }).msg === msg).length
}

describe.runIf(consulBin && nginxBin)('nginx in front of two instances, upstreams from Consul', () => {
  let storage: string
  let consul: ConsulAgent
  let nginx: NginxProcess
  let a: ProcessService
  let b: ProcessService
  let sync: ChildProcess
  let syncOutput = ''
  const api = () => `${nginx.origin}/filestorage/v1`
  const upstreams = () => readFile(nginx.upstreamsFile, 'utf8')

  beforeAll(async () => {
    storage = await mkdtemp(join(tmpdir(), 'filestorage-fleet-'))
    consul = await ConsulAgent.start(consulBin!)
    nginx = await startNginx(nginxBin!)
    const env = { ...registrationEnv(consul.addr, NAME, storage), LOG_REQUESTS: 'true' }
    ;[a, b] = await Promise.all([spawnService(env), spawnService(env)])
    await consul.waitForPassing(NAME, [a, b].map((s) => `${NAME}-127.0.0.1:${s.port}`))

    sync = spawn(process.execPath, ['--import', 'tsx', 'src/adapters/nginx/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        CONSUL_HTTP_ADDR: consul.addr,
        SERVICE_NAME: NAME,
        NGINX_UPSTREAM_FILE: nginx.upstreamsFile,
        NGINX_PID_FILE: nginx.pidFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    sync.stdout!.on('data', (c: Buffer) => (syncOutput += c.toString()))
    sync.stderr!.on('data', (c: Buffer) => (syncOutput += c.toString()))
    await waitFor('the upstream file to list both instances', async () => {
      const file = await upstreams()
      return file.includes(`127.0.0.1:${a.port} `) && file.includes(`127.0.0.1:${b.port} `)
    })
    await waitFor('nginx to serve through them', async () => (await fetch(`${api()}/check`)).status === 200)
  }, 120_000)

  afterAll(async () => {
    sync?.kill('SIGTERM')
    await nginx?.dispose()
    await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')])
    await consul?.dispose()
    await rm(storage, { recursive: true, force: true })
  })

  it('streams a 256 MiB upload and its download through nginx, byte for byte', async () => {
    const size = 256 * MiB
    const source = generated(size, 256)
    const put = await fetch(`${api()}/disk/upload/big/256MiB.bin`, {
      method: 'PUT',
      body: source.stream,
      duplex: 'half',
      signal: AbortSignal.timeout(180_000),
    } as RequestInit)
    expect(put.status).toBe(201)
    const digest = source.digest()
    expect(await put.json()).toMatchObject({ size, sha256: digest })

    const get = await fetch(`${api()}/disk/download/big/256MiB.bin`, { signal: AbortSignal.timeout(180_000) })
    expect(get.status).toBe(200)
    expect(get.headers.get('content-length')).toBe(String(size))
    const hash = (await import('node:crypto')).createHash('sha256')
    let received = 0
    for await (const chunk of get.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk)
      received += chunk.length
    }
    expect(received).toBe(size)
    expect(hash.digest('hex')).toBe(digest)
    // Streamed, not spooled: nginx wrote nothing of either body to its temp folders.
    expect(await readdir(join(nginx.prefix, 'client_body_temp'))).toEqual([])
    expect(await readdir(join(nginx.prefix, 'proxy_temp'))).toEqual([])
  }, 300_000)

  it('spreads requests over both instances', async () => {
    const body = 'spread me'
    expect((await fetch(`${api()}/disk/upload/spread.txt`, { method: 'PUT', body })).status).toBe(201)
    const before = [served(a, 'GET', 'spread.txt'), served(b, 'GET', 'spread.txt')]
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${api()}/disk/download/spread.txt`, { signal: AbortSignal.timeout(10_000) })
      expect(await response.text()).toBe(body)
    }
    // Each instance logs a request as its response is ready, which may trail nginx's answer a little.
    const counts = await waitFor('both instances to log their share', () => {
      const now = [served(a, 'GET', 'spread.txt') - before[0]!, served(b, 'GET', 'spread.txt') - before[1]!]
      return now[0]! + now[1]! === 20 && now
    })
    expect(counts[0]).toBeGreaterThan(0)
    expect(counts[1]).toBeGreaterThan(0)
  })

  it('loses no GET when an instance is killed mid-run, and drops it from the upstreams', async () => {
    // 1 MiB: large enough that a kill often lands while a response is streaming.
    const content = Buffer.alloc(MiB)
    for (let i = 0; i < content.length; i++) content[i] = (i * 31) % 251
    expect((await fetch(`${api()}/disk/upload/steady.bin`, { method: 'PUT', body: content })).status).toBe(201)
    const want = sha256(content)

    // The typed client, pointed at nginx, as another service would use it. nginx passes to the
    // survivor every request that got nothing from the killed instance, but a response that was
    // already streaming from it breaks off: no proxy can take back bytes it sent. The client then
    // fetches the rest (a Range request, which nginx sends to the survivor), and a GET that a nginx
    // reload cut before any answer (old workers close idle kept-alive connections) is sent again.
    // A bare fetch would fail in both cases; any answer nginx gives, a 502 included, counts as is.
    const retries: string[] = []
    const client = createFileStorageClient({
      target: nginx.origin,
      onRetry: (event) => retries.push(`${event.kind}: ${String((event.error as Error).cause ?? event.error)}`),
    })
    const failures: string[] = []
    let done = 0
    let killedAt = -1
    let droppedAt = -1
    const deadline = Date.now() + 60_000
    // Runs until the upstream file no longer lists the killed instance and 100 more GETs went
    // through; bounded by count and time.
    const finished = () => (droppedAt >= 0 && done >= droppedAt + 100) || done >= 20_000 || Date.now() > deadline
    const worker = async () => {
      while (!finished()) {
        const n = done++
        if (n === 200) {
          killedAt = n
          a.child.kill('SIGKILL')
          void upstreamsWithout(a.port).then(() => (droppedAt = done))
        }
        try {
          const response = await client.download('disk', 'steady.bin', { signal: AbortSignal.timeout(10_000) })
          const bytes = Buffer.from(await response.arrayBuffer())
          if (response.status !== 200 || sha256(bytes) !== want) failures.push(`#${n}: ${response.status}, ${bytes.length} bytes`)
        } catch (e) {
          failures.push(`#${n}: ${(e as Error).message} (${String((e as Error).cause)})`)
        }
      }
    }
    const upstreamsWithout = (port: number) =>
      waitFor('the upstream sync to drop the killed instance', async () => !(await upstreams()).includes(`127.0.0.1:${port} `), {
        timeoutMs: 30_000,
      })
    await Promise.all([worker(), worker(), worker(), worker()])

    expect(failures, `retries made: ${retries.join('; ')}`).toEqual([])
    expect(killedAt).toBe(200)
    expect(droppedAt).toBeGreaterThan(killedAt)
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' })
    expect(await upstreams()).toContain(`127.0.0.1:${b.port} `)
    expect(syncOutput).toContain(`nginx reloaded with 127.0.0.1:${b.port}`)
    // nginx did pass GETs on: its log names both instances for them, the killed one first.
    const passedOn = (await nginx.accessLog()).split('\n').filter((l) => l.includes(`upstream=127.0.0.1:${a.port}, 127.0.0.1:${b.port} `))
    expect(passedOn.length).toBeGreaterThan(0)

    // After the reload nginx sends everything to the survivor.
    const before = served(b, 'GET', 'steady.bin')
    for (let i = 0; i < 10; i++) expect((await fetch(`${api()}/disk/download/steady.bin`)).status).toBe(200)
    await waitFor('the survivor to log all ten', () => served(b, 'GET', 'steady.bin') - before === 10)
  }, 120_000)

  it('answers in the JSON error shape when no instance passes', async () => {
    await b.stop('SIGTERM') // deregisters: the list is now empty
    await waitFor('the upstream file to hold no instance', async () => (await upstreams()).includes('server 127.0.0.1:9 down;'))
    const response = await waitFor('nginx to reload', async () => {
      const r = await fetch(`${api()}/disk/download/steady.bin`)
      return r.status === 503 && r
    })
    expect(response.headers.get('content-type')).toBe('application/json')
    expect(response.headers.get('retry-after')).toBe('1')
    expect(await response.json()).toEqual({ error: { code: 'store_unavailable', message: 'no filestorage instance answered' } })
  })
})
