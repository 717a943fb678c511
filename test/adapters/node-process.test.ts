/**
 * The service as a process: configuration errors, the embedded default, graceful shutdown, several
 * workers; the node adapter on Node and the bun adapter on Bun alike.
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { loadConfig } from '../../src/adapters/service/config.js'
import { expectError, rawRequest } from '../helpers/http.js'
import { BUN, BUN_ARGS, RUNTIMES, spawnService } from '../helpers/process-service.js'
import { waitFor } from '../helpers/wait.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'filestorage-proc-'))
})
afterAll(async () => rm(dir, { recursive: true, force: true }))

describe('configuration', () => {
  it('has the defaults of SPEC 4', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      PORT: 8081,
      HOST: '127.0.0.1', // no authentication configured: loopback only (SPEC 6)
      AUTH_MODE: 'anonymous',
      STORAGE_DIR: './data',
      MONGODB_DB: 'filestorage',
      INLINE_MAX_BYTES: 1048576,
      SERVICE_NAME: 'filestorage',
      SERVICE_TAGS: [],
      HEADERS_TIMEOUT_SECONDS: 20,
      BODY_IDLE_TIMEOUT_SECONDS: 30,
      REQUEST_TIMEOUT_SECONDS: 30,
      SEND_IDLE_TIMEOUT_SECONDS: 60,
      MAX_CONNECTIONS: 1024,
    })
    expect(config.MONGODB_URI).toBeUndefined()
    expect(config.MAX_UPLOAD_BYTES).toBeUndefined()
    expect(config.CONSUL_HTTP_ADDR).toBeUndefined()
  })

  it('reads sizes with units and lists of tags', () => {
    const config = loadConfig({ MAX_UPLOAD_BYTES: '2GiB', INLINE_MAX_BYTES: '512KiB', SERVICE_TAGS: 'a, b,,c' })
    expect(config.MAX_UPLOAD_BYTES).toBe(2 * 1024 ** 3)
    expect(config.INLINE_MAX_BYTES).toBe(512 * 1024)
    expect(config.SERVICE_TAGS).toEqual(['a', 'b', 'c'])
  })

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['INLINE_MAX_BYTES', '16MiB'],
    ['MAX_UPLOAD_BYTES', 'lots'],
    ['MONGODB_URI', 'http://not-mongo'],
    ['LOG_REQUESTS', 'perhaps'],
    ['HEADERS_TIMEOUT_SECONDS', '0'],
    ['BODY_IDLE_TIMEOUT_SECONDS', '-5'],
    ['REQUEST_TIMEOUT_SECONDS', 'soon'],
    ['SEND_IDLE_TIMEOUT_SECONDS', '0'],
    ['MAX_CONNECTIONS', '0'],
    ['MAX_CONNECTIONS', '1.5'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name}=`))
  })

  const mains: [string, string, string[]][] = [['node', process.execPath, ['--import', 'tsx', 'src/adapters/node/main.ts']]]
  if (BUN) mains.push(['bun', BUN, [...BUN_ARGS, 'src/adapters/bun/main.ts']])
  it.each(mains)('stops the process with a message naming the variable (%s)', (_runtime, program, args) => {
    const result = spawnSync(program, args, {
      cwd: ROOT,
      env: { ...process.env, PORT: 'not-a-port', INLINE_MAX_BYTES: '99GiB' },
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(/PORT="not-a-port"/)
    expect(result.stderr).toMatch(/INLINE_MAX_BYTES="99GiB": must be at most 15 MiB/)
  })
})

describe.each(RUNTIMES)('the service process on %s', (runtime) => {
  it('serves the disk store with nothing else configured, then stops on SIGTERM with exit 0', async () => {
    const storage = join(dir, `default-${runtime}`)
    const svc = await spawnService({ STORAGE_DIR: storage }, { runtime })
    const put = await fetch(`${svc.api}/disk/upload/hello.txt`, { method: 'PUT', body: 'hi' })
    expect(put.status).toBe(201)
    expect(await readFile(join(storage, 'hello.txt'), 'utf8')).toBe('hi')
    const check = (await (await fetch(`${svc.api}/check`)).json()) as { stores: Record<string, unknown> }
    expect(Object.keys(check.stores)).toEqual(['disk'])
    expect(await svc.stop('SIGTERM')).toEqual({ code: 0, signal: null })
  })

  it('finishes an upload in flight when told to stop, refuses new connections, and exits 0', async () => {
    const storage = join(dir, `graceful-${runtime}`)
    const svc = await spawnService({ STORAGE_DIR: storage, LOG_REQUESTS: 'true' }, { runtime })
    const chunk = new Uint8Array(256 * 1024).fill(1)
    let sent = 0
    let signalled = false
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent >= 40) {
          controller.close()
          return
        }
        if (sent === 10 && !signalled) {
          signalled = true
          svc.child.kill('SIGTERM') // the upload is a quarter through
          await new Promise((r) => setTimeout(r, 300))
          await expect(fetch(`${svc.api}/check`)).rejects.toThrow() // no longer accepting
        }
        await new Promise((r) => setTimeout(r, 10))
        sent++
        controller.enqueue(chunk)
      },
    })
    const res = await fetch(`${svc.api}/disk/upload/inflight.bin`, { method: 'PUT', body, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(201)
    expect(((await res.json()) as { size: number }).size).toBe(40 * chunk.length)
    expect(await svc.exited).toEqual({ code: 0, signal: null })
    expect(svc.output()).toMatch(/SIGTERM: finishing requests in flight/)
    expect((await readFile(join(storage, 'inflight.bin'))).length).toBe(40 * chunk.length)
  })

  it('answers TRACE or GET with a body 405 where the route does not serve it (fetch Request refuses to carry that body)', async () => {
    const svc = await spawnService({ STORAGE_DIR: join(dir, `trace-${runtime}`) }, { runtime })
    try {
      const paths = ['/filestorage/v1/disk/sign/a.txt', '/filestorage/v1/disk/upload/a.txt', '/filestorage/v1/disk/completeupload/0123456789abcdef0123456789abcdef']
      for (const [method, path] of [...paths.map((p) => ['TRACE', p]), ['GET', paths[1]!]] as const) {
        const res = await rawRequest(svc.origin, method, path, { headers: { 'content-type': 'application/json', 'content-length': '2' }, body: '{}' })
        await expectError(res, 405, 'method_not_allowed')
      }
      // A route that serves GET answers it as without the body.
      const info = await rawRequest(svc.origin, 'GET', '/filestorage/v1/disk/info/none.txt', { headers: { 'content-length': '2' }, body: '{}' })
      await expectError(info, 404, 'not_found')
    } finally {
      await svc.stop()
    }
  })

  it('stops on SIGINT too', async () => {
    const svc = await spawnService({ STORAGE_DIR: join(dir, `sigint-${runtime}`) }, { runtime })
    expect(await svc.stop('SIGINT')).toEqual({ code: 0, signal: null })
  })

  describe('with WORKERS=2', () => {
    /** The worker processes of the primary `pid`, from /proc. */
    const workersOf = async (pid: number): Promise<number[]> => {
      const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
      return children.trim().split(/\s+/).filter(Boolean).map(Number)
    }

    it('serves one port from two processes, replaces a worker that dies, and drains both on SIGTERM', async () => {
      const storage = join(dir, `workers-${runtime}`)
      const svc = await spawnService({ STORAGE_DIR: storage, WORKERS: '2', LOG_REQUESTS: 'true' }, { runtime })
      onTestFinished(async () => void (await svc.stop('SIGKILL'))) // a failed step leaves no primary behind (its workers follow it)
      expect(svc.output()).toMatch(/serving stores disk on .* with 2 workers/)
      const workers = await waitFor('two workers', async () => {
        const pids = await workersOf(svc.pid)
        return pids.length === 2 ? pids : undefined
      })
      // The service is announced once the first worker listens; the second opens the store (its
      // instance record) on its own time. The access log names no worker, so count the instances.
      const instances = async () => (await readdir(join(storage, '.filestorage/instances'))).filter((n) => n.endsWith('.json'))
      await waitFor('both workers on the store', async () => (await instances()).length === 2)
      for (let i = 0; i < 20; i++) expect((await fetch(`${svc.api}/disk/upload/w/${i}.txt`, { method: 'PUT', body: `w${i}` })).status).toBe(201)
      expect(await instances()).toHaveLength(2)

      process.kill(workers[0]!, 'SIGKILL')
      const replaced = await waitFor('a new worker in place of the dead one', async () => {
        const pids = await workersOf(svc.pid)
        return pids.length === 2 && !pids.includes(workers[0]!) ? pids : undefined
      })
      expect(replaced).toContain(workers[1])
      expect(svc.output()).toMatch(new RegExp(`worker ${workers[0]} \\(sweeper\\) died \\(SIGKILL\\); starting another`))
      const replacement = replaced.find((pid) => pid !== workers[1])!
      await waitFor('the new worker serving', () => svc.output().includes(`worker ${replacement} (sweeper) serving in place of ${workers[0]}`))
      // Fresh connections (no keep-alive), several, so that both workers take some.
      for (let i = 0; i < 4; i++) {
        const res = await fetch(`${svc.api}/disk/info/w/${i}.txt`, { headers: { connection: 'close' } }).catch(async (e: Error) => {
          throw new Error(`after the replacement: ${e.cause ?? e}; workers now ${await workersOf(svc.pid)}; output:\n${svc.output()}`)
        })
        expect(res.status).toBe(200)
      }

      // A slow upload in flight on some worker when SIGTERM comes: finished, then every process exits.
      let sent = 0
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 5) svc.child.kill('SIGTERM')
          if (sent >= 20) return controller.close()
          await new Promise((r) => setTimeout(r, 20))
          sent++
          controller.enqueue(new Uint8Array(64 * 1024).fill(sent))
        },
      })
      const res = await fetch(`${svc.api}/disk/upload/w/inflight.bin`, { method: 'PUT', body, duplex: 'half' } as RequestInit)
      expect(res.status).toBe(201)
      expect(await svc.exited).toEqual({ code: 0, signal: null })
      for (const pid of replaced) expect(await readFile(`/proc/${pid}/status`).then(() => 'alive', () => 'gone')).toBe('gone')
      // The new sweeper reaped the dead worker, and each worker closed its store on the way out.
      const left = (await readdir(join(storage, '.filestorage/instances'))).filter((n) => n.endsWith('.json'))
      const records = await Promise.all(left.map((n) => readFile(join(storage, '.filestorage/instances', n), 'utf8')))
      expect(records).toEqual([])
    })

    it('keeps the port it announced (PORT=0) when every worker dies at once', async () => {
      // node:cluster closes the listening socket once no worker has it; replacements asking for
      // port 0 again would land on another random port, away from the one announced and registered.
      const svc = await spawnService({ STORAGE_DIR: join(dir, `all-die-${runtime}`), WORKERS: '2' }, { runtime })
      onTestFinished(async () => void (await svc.stop('SIGKILL')))
      const workers = await waitFor('two workers', async () => {
        const pids = await workersOf(svc.pid)
        return pids.length === 2 ? pids : undefined
      })
      for (const pid of workers) process.kill(pid, 'SIGKILL')
      await waitFor('both replaced and serving', async () => {
        const pids = await workersOf(svc.pid)
        const serving = pids.filter((pid) => new RegExp(`worker ${pid} \\(\\w+\\) serving in place of`).test(svc.output()))
        return serving.length === 2 && !pids.some((pid) => workers.includes(pid))
      })
      const res = await fetch(`${svc.api}/disk/list/`).catch(async (e: Error) => {
        throw new Error(`the announced port refuses: ${e.cause ?? e}; output:\n${svc.output()}`)
      })
      expect(res.status).toBe(200)
      expect(await svc.stop()).toEqual({ code: 0, signal: null })
    })
  })
})
