/**
 * Registration with a real Consul agent (`consul agent -dev` on loopback ports): the instance as a
 * process registers with a passing HTTP check; SIGTERM deregisters it before its requests in flight
 * end; SIGKILL leaves it registered with a critical check, which discovery does not return, until
 * Consul reaps it after CONSUL_DEREGISTER_AFTER; an agent restarted without its state gets the
 * registration back; an instance started while Consul is down serves, and registers once Consul is up.
 * Registration, the order of a graceful stop and WORKERS (one registration for the instance) on both
 * runtimes; the rest is the same code on both (src/adapters/service), tested on Node.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServiceResolver } from '../../src/adapters/discovery/index.js'
import { ConsulAgent, ConsulApi, consulBinary, consulPorts, registrationEnv } from '../helpers/consul.js'
import { type ProcessService, type Runtime, RUNTIMES, spawnService } from '../helpers/process-service.js'
import { waitFor } from '../helpers/wait.js'

const consulBin = consulBinary()
const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

describe.runIf(consulBin)('Consul registration', () => {
  let consul: ConsulAgent
  /**
   * The agent the killed instance below is registered with. Consul reaps it at the first run of its
   * reaper (every 30 s from the agent's start) after its check has been critical for a minute, and
   * neither figure can be changed (Consul holds both as internal settings): 60 to 90 s after the kill
   * on the run's agent (CONSUL_HTTP_ADDR, up since the run began), 90 s after its start on an agent
   * of this file's own. So the run's agent when there is one, and that test first, so that the
   * others run while Consul's minute passes.
   */
  let reaper: ConsulApi
  let dir: string
  const started: ProcessService[] = []
  const spawn = async (name: string, env: Record<string, string> = {}, runtime: Runtime = 'node', agent: ConsulApi = consul) => {
    const svc = await spawnService({ ...registrationEnv(agent.addr, name, join(dir, name)), ...env }, { runtime })
    started.push(svc)
    return { svc, id: `${name}-127.0.0.1:${svc.port}` }
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-consul-reg-'))
    consul = await ConsulAgent.start(consulBin!)
    reaper = process.env.CONSUL_HTTP_ADDR ? new ConsulApi(process.env.CONSUL_HTTP_ADDR) : consul
  })
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop('SIGKILL')))
    await consul?.dispose()
    await rm(dir, { recursive: true, force: true })
  })

  let killed: { id: string; at: number } | undefined
  const KILLED = `fs-sigkill-${process.pid}` // the run's agent may be a developer's own, kept across runs

  it('after SIGKILL stays registered with a critical check, and discovery stops returning it', async () => {
    const { svc, id } = await spawn(KILLED, {}, 'node', reaper)
    await reaper.waitForPassing(KILLED, [id])
    const resolver = createServiceResolver({ consul: reaper.addr, service: KILLED, waitSeconds: 5 })
    try {
      expect((await resolver.instances()).map((i) => i.id)).toEqual([id])
      await svc.stop('SIGKILL')
      killed = { id, at: Date.now() }
      await waitFor('the check to turn critical', async () => {
        const [entry] = await reaper.all(KILLED)
        return entry?.Checks.find((c) => c.ServiceID === id)?.Status === 'critical'
      })
      await waitFor('discovery to drop the instance', async () => (await resolver.instances()).length === 0)
      // Not deregistered (nobody did): Consul reaps it only after CONSUL_DEREGISTER_AFTER.
      expect((await reaper.all(KILLED)).map((e) => e.Service.ID)).toEqual([id])
    } finally {
      resolver.close()
    }
  })

  describe.each(RUNTIMES)('on %s', (runtime) => {
    it('registers the instance with its id, tags, meta and an HTTP check that passes', async () => {
      const { svc, id } = await spawn(`fs-register-${runtime}`, { SERVICE_TAGS: 'blue, v1', CONSUL_CHECK_TIMEOUT: '2s' }, runtime)
      const [entry] = await consul.waitForPassing(`fs-register-${runtime}`, [id])
      expect(entry!.Service).toMatchObject({
        ID: id,
        Service: `fs-register-${runtime}`,
        Address: '127.0.0.1',
        Port: svc.port,
        Tags: ['blue', 'v1'],
        Meta: { version, stores: 'disk' },
      })
      const check = entry!.Checks.find((c) => c.ServiceID === id)
      expect(check).toMatchObject({ Type: 'http', Status: 'passing' })
      expect(check!.Output).toContain(`HTTP GET http://127.0.0.1:${svc.port}/filestorage/v1/check: 200 OK`)
      const agentChecks = await consul.get<Record<string, { Interval: string; Timeout: string }>>('/v1/agent/checks')
      expect(agentChecks[check!.CheckID]).toMatchObject({ Interval: '1s', Timeout: '2s' })
      expect(svc.output()).toContain(`consul: registered ${id}`)
    })

    it('on SIGTERM deregisters first, while a request is in flight, then stops accepting, finishes it and exits 0', async () => {
      const { svc, id } = await spawn(`fs-sigterm-${runtime}`, { LOG_REQUESTS: 'true' }, runtime)
      await consul.waitForPassing(`fs-sigterm-${runtime}`, [id])

      const chunk = new Uint8Array(64 * 1024).fill(3)
      let sent = 0
      let release!: () => void
      const released = new Promise<void>((resolve) => (release = resolve))
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (sent === 4) await released // the upload holds here until the test has seen the shutdown steps
          if (sent >= 8) return controller.close()
          sent++
          controller.enqueue(chunk)
        },
      })
      const upload = fetch(`${svc.api}/disk/upload/inflight.bin`, { method: 'PUT', body, duplex: 'half' } as RequestInit)
      await waitFor('the upload to be under way', () => sent >= 4)

      svc.child.kill('SIGTERM')
      // 1. Gone from Consul (not merely critical) while the upload is still in flight.
      await waitFor('the deregistration', async () => (await consul.all(`fs-sigterm-${runtime}`)).length === 0)
      // 2. Then no new connections.
      await waitFor('the listener to close', () => fetch(`${svc.api}/check`).then(() => false, () => true))
      expect(sent).toBe(4)
      // 3. The request in flight finishes, and the process exits 0.
      release()
      const response = await upload
      expect(response.status).toBe(201)
      expect(((await response.json()) as { size: number }).size).toBe(8 * chunk.length)
      expect(await svc.exited).toEqual({ code: 0, signal: null })
      const out = svc.output()
      expect(out.indexOf(`consul: deregistered ${id}`)).toBeGreaterThan(out.indexOf('SIGTERM'))
      expect(out.indexOf('PUT /filestorage/v1/disk/upload/inflight.bin 201')).toBeGreaterThan(out.indexOf('consul: deregistered'))
    })

    it('with WORKERS=2 registers the instance once, and on SIGTERM deregisters it once, then drains both workers', async () => {
      const { svc, id } = await spawn(`fs-workers-${runtime}`, { WORKERS: '2', LOG_REQUESTS: 'true' }, runtime)
      const [entry] = await consul.waitForPassing(`fs-workers-${runtime}`, [id])
      expect(entry!.Service).toMatchObject({ ID: id, Port: svc.port })
      // Both workers answer behind the one registration (each registered its own store instance).
      expect(await consul.all(`fs-workers-${runtime}`)).toHaveLength(1)
      const uploads = Array.from({ length: 6 }, (_, i) => {
        let sent = 0
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (sent >= 10) return controller.close()
            await new Promise((r) => setTimeout(r, 50))
            sent++
            controller.enqueue(new Uint8Array(32 * 1024).fill(i))
          },
        })
        return fetch(`${svc.api}/disk/upload/drain/${i}.bin`, { method: 'PUT', body, duplex: 'half' } as RequestInit)
      })
      await new Promise((r) => setTimeout(r, 150)) // every upload under way
      svc.child.kill('SIGTERM')
      await waitFor('the deregistration', async () => (await consul.all(`fs-workers-${runtime}`)).length === 0)
      for (const response of await Promise.all(uploads)) expect(response.status).toBe(201)
      expect(await svc.exited).toEqual({ code: 0, signal: null })
      const out = svc.output()
      expect(out.split(`consul: registered ${id}`).length - 1).toBe(1)
      expect(out.split(`consul: deregistered ${id}`).length - 1).toBe(1)
    })
  })

  it('registers again by itself when the agent restarts without its state', async () => {
    // An agent of its own: without the run's agent, `consul` holds the killed instance above until Consul reaps it.
    const agent = await ConsulAgent.start(consulBin!)
    try {
      const name = 'fs-agent-restart'
      const svc = await spawnService(registrationEnv(agent.addr, name, join(dir, name)))
      started.push(svc)
      const id = `${name}-127.0.0.1:${svc.port}`
      await agent.waitForPassing(name, [id])
      await agent.restartWithoutState()
      await agent.waitForPassing(name, [id])
      expect(svc.output()).toContain(`consul: the agent lost ${id}; registering again`)
    } finally {
      await agent.dispose()
    }
  })

  it('starts and serves with Consul down, retrying, and registers once Consul is up', async () => {
    const ports = await consulPorts() // where Consul will be, once it starts
    const name = 'fs-consul-late'
    const svc = await spawnService({ ...registrationEnv(`127.0.0.1:${ports.http}`, name, join(dir, name)) })
    started.push(svc)
    const put = await fetch(`${svc.api}/disk/upload/while-consul-is-down.txt`, { method: 'PUT', body: 'served' })
    expect(put.status).toBe(201)
    expect(await (await fetch(`${svc.api}/disk/download/while-consul-is-down.txt`)).text()).toBe('served')
    await waitFor('two failed attempts', () => (svc.output().match(/did not answer/g) ?? []).length >= 2)

    const late = await ConsulAgent.start(consulBin!, ports)
    try {
      await late.waitForPassing(name, [`${name}-127.0.0.1:${svc.port}`])
    } finally {
      await svc.stop('SIGTERM')
      await late.dispose()
    }
  })

  // Last, so that it waits as little as possible (see `reaper`).
  it('is reaped by Consul once its check has been critical for CONSUL_DEREGISTER_AFTER (1m)', async () => {
    expect(killed).toBeDefined()
    await waitFor('Consul to reap the killed instance', async () => (await reaper.all(KILLED)).length === 0, {
      timeoutMs: 120_000 - (Date.now() - killed!.at),
      intervalMs: 1000,
    })
    expect(Date.now() - killed!.at).toBeGreaterThanOrEqual(60_000)
  }, 130_000)
})
