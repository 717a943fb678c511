/**
 * Slow clients (issue 10, finding 4): a slowloris of 300 connections sending their headers a byte
 * at a time and 50 uploads whose bodies stall, while another client keeps downloading. The
 * stalled ones must be cut within the configured time (a stalled body answered 408), downloads
 * keep succeeding, and afterwards no descriptor or temporary data is left. On Bun, whose server has
 * no header timeout of its own to set, the slowloris is cut by Bun's fixed one (BUN_HEADERS_SECONDS).
 */
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { MongoClient } from 'mongodb'
import { afterAll, describe, expect, test } from 'vitest'
import type { ProcessService, Runtime } from '../helpers/process-service.js'
import { sha256 } from '../helpers/streams.js'
import { expectNone } from './expect-none.js'
import { s3Leftovers, s3Port } from './s3-leftovers.js'
import { auditedRuns, internalUsage, openDescriptors, report, sleep, startBuilt, storeEnv, tempDir, trackPeakRss } from './harness.js'
import { BUN_HEADERS_SECONDS, SLOW_CLIENTS, TIMEOUT_VARS } from './knobs.js'

const started: ProcessService[] = []
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')))
})

interface Tracked {
  socket: Socket
  kind: 'slowloris' | 'stalled body'
  /** When its clock started: connection (headers) or the last body byte sent (idle body). */
  since: number
  closedAt?: number
  received: string
}

function track(port: number, kind: Tracked['kind'], first: string | Buffer): Tracked {
  const socket = connect({ host: '127.0.0.1', port })
  const t: Tracked = { socket, kind, since: performance.now(), received: '' }
  socket.on('data', (d: Buffer) => {
    if (t.received.length < 200) t.received += d.toString('latin1')
  })
  socket.on('error', () => {})
  socket.on('close', () => (t.closedAt = performance.now()))
  socket.write(first, () => (t.since = performance.now()))
  return t
}

/** Temporary data of a store that is not its files: internal files on disk, GridFS files on mongo. */
async function temporaryData(store: string, storageDir: string, env: Record<string, string>): Promise<number> {
  if (store === 'disk') return (await internalUsage(storageDir)).files
  if (store === 's3') return (await s3Leftovers(env, ['slow/served.bin'])).found
  const client = new MongoClient(env.MONGODB_URI!, { serverSelectionTimeoutMS: 10_000 })
  try {
    return await client.db(env.MONGODB_DB!).collection('fs.files').countDocuments()
  } finally {
    await client.close()
  }
}

describe.each(auditedRuns('the slow-clients audit').map((run) => [run.name, run] as const))('slow clients: %s', (_, { store, runtime, name }) => {
  test(`${SLOW_CLIENTS.slowloris} slowloris connections and ${SLOW_CLIENTS.stalledBodies} stalled bodies are cut in time, downloads go on, nothing is left`, async () => {
    const dir = await tempDir(`slow-${store}-${runtime}`)
    const env: Record<string, string> = {
      STORAGE_DIR: dir.path,
      SWEEP_INTERVAL_SECONDS: '1',
      [TIMEOUT_VARS.headers]: String(SLOW_CLIENTS.headersTimeoutSeconds),
      [TIMEOUT_VARS.bodyIdle]: String(SLOW_CLIENTS.bodyIdleTimeoutSeconds),
      ...storeEnv(store),
    }
    const svc = await startBuilt(env, { runtime })
    started.push(svc)
    const rss = trackPeakRss(() => [svc])
    const problems: string[] = []
    let badDownloads = 0
    const open: Tracked[] = []
    try {
      const file = randomBytes(1024 * 1024)
      const fileUrl = `${svc.api}/${store}/download/slow/served.bin`
      expect((await fetch(`${svc.api}/${store}/upload/slow/served.bin`, { method: 'PUT', body: file })).status).toBe(201)
      expect((await fetch(fileUrl)).status).toBe(200)
      await sleep(1500)
      const dbPorts = store === 'mongo' ? [Number(new URL(env.MONGODB_URI!).port)] : store === 's3' ? [s3Port(env)] : []
      const fdsBefore = await openDescriptors(svc.pid, dbPorts)
      const tempBefore = await temporaryData(store, dir.path, env)

      // The downloader: keeps going until the attack is over.
      let attacking = true
      const latencies: number[] = []
      const downloader = (async () => {
        for (let n = 0; attacking && n < 10_000; n++) {
          const t0 = performance.now()
          try {
            const res = await fetch(fileUrl, { signal: AbortSignal.timeout(SLOW_CLIENTS.downloadBoundMs) })
            const body = Buffer.from(await res.arrayBuffer())
            if (res.status !== 200 || sha256(body) !== sha256(file)) badDownloads++
            if (res.status !== 200 || sha256(body) !== sha256(file)) problems.push(`a download during the attack answers ${res.status} with ${body.length} bytes`)
          } catch (e) {
            problems.push(`a download during the attack failed: ${(e as Error).message}`)
          }
          latencies.push(performance.now() - t0)
          await sleep(50)
        }
      })()

      const host = `Host: 127.0.0.1:${svc.port}\r\n`
      for (let i = 0; i < SLOW_CLIENTS.slowloris; i++) {
        open.push(track(svc.port, 'slowloris', `GET /filestorage/v1/${store}/download/slow/served.bin HTTP/1.1\r\n${host}X-Slow: `))
      }
      for (let i = 0; i < SLOW_CLIENTS.stalledBodies; i++) {
        const head = `PUT /filestorage/v1/${store}/upload/slow/stalled-${i}.bin HTTP/1.1\r\n${host}Content-Type: application/pdf\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n`
        open.push(track(svc.port, 'stalled body', Buffer.concat([Buffer.from(head), randomBytes(64 * 1024)])))
      }
      // The slowloris sends one more header byte at a time; everything waits at most the timeouts plus the grace.
      const headersSeconds: Record<Runtime, number> = { node: SLOW_CLIENTS.headersTimeoutSeconds, bun: BUN_HEADERS_SECONDS }
      const limitMs = (kind: Tracked['kind']) =>
        1000 * ((kind === 'slowloris' ? headersSeconds[runtime] : SLOW_CLIENTS.bodyIdleTimeoutSeconds) + SLOW_CLIENTS.graceSeconds)
      const deadline = performance.now() + Math.max(limitMs('slowloris'), limitMs('stalled body')) + 1000
      while (performance.now() < deadline && open.some((t) => t.closedAt === undefined)) {
        for (const t of open) if (t.kind === 'slowloris' && t.closedAt === undefined && t.socket.writable) t.socket.write('a')
        await sleep(SLOW_CLIENTS.byteIntervalMs)
      }
      attacking = false
      await downloader

      let notCut = 0
      for (const kind of ['slowloris', 'stalled body'] as const) {
        const ofKind = open.filter((t) => t.kind === kind)
        const late = ofKind.filter((t) => t.closedAt === undefined || t.closedAt - t.since > limitMs(kind))
        notCut += late.length
        if (late.length) problems.push(`${late.length} of ${ofKind.length} ${kind} connections not cut within ${limitMs(kind) / 1000} s`)
      }
      const stalled = open.filter((t) => t.kind === 'stalled body' && t.closedAt !== undefined)
      const without408 = stalled.filter((t) => !t.received.startsWith('HTTP/1.1 408'))
      if (without408.length) problems.push(`${without408.length} of ${stalled.length} cut stalled bodies got no 408 (e.g. "${without408[0]!.received.slice(0, 40)}")`)
      for (const t of open) t.socket.destroy()

      // Afterwards: descriptors back where they were, and no temporary data once a sweep ran.
      await sleep(2500)
      const fdsAfter = await openDescriptors(svc.pid, dbPorts)
      if (fdsAfter > fdsBefore + 5) problems.push(`${fdsAfter - fdsBefore} more descriptors open after the attack (${fdsBefore} before, ${fdsAfter} after)`)
      const tempAfter = await temporaryData(store, dir.path, env)
      if (tempAfter > tempBefore) problems.push(`${tempAfter - tempBefore} temporary ${store === 'disk' ? 'files' : 'GridFS files'} left by the stalled uploads`)
      const sorted = [...latencies].sort((a, b) => a - b)
      const p50 = Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0)
      const max = Math.round(sorted.at(-1) ?? 0)
      console.log(`[reliability] slow clients ${name}: ${latencies.length} downloads during the attack, latency p50 ${p50} ms, max ${max} ms; descriptors ${fdsBefore} -> ${fdsAfter}`)
      await report(`slow clients ${name}`, {
        readsAudited: latencies.length,
        mismatches: badDownloads,
        notCut,
        leftoversFound: Math.max(0, tempAfter - tempBefore),
        peakRssMiB: await rss.stop(),
        failed: problems,
      })
      expect(latencies.length, 'the downloader made no request').toBeGreaterThan(3)
      expectNone(problems, 'under slow clients')
    } finally {
      for (const t of open) t.socket.destroy()
      await svc.stop('SIGKILL')
      await dir.remove()
    }
  })
})
