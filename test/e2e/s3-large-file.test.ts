/**
 * A 1 GiB file through HTTP on the s3 store (the run's SeaweedFS), with the service as its own
 * process: memory stays within the documented bound both ways (an upload holds at most
 * concurrency + 1 parts: 5 x 8 MiB; a download streams S3's response), measured from /proc, never
 * time; and 256 MiB sent as an upload in parts is composed server-side, its sha256 computed by
 * reading the staged parts once, within the same bound.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ProcessService, spawnService } from '../helpers/process-service.js'
import { s3StoreEnv, s3TestTarget } from '../helpers/s3-store.js'
import { generated } from '../helpers/streams.js'

const target = s3TestTarget()
const GiB = 1024 ** 3
const MiB = 1024 ** 2
/** How much the service's resident memory may grow while moving 1 GiB: the parts it holds (40 MiB) and room for the allocator. */
const BOUND = 100 * MiB
const PATH = 'big/one-gib.bin'

describe.runIf(target !== undefined)('1 GiB through HTTP on the s3 store', () => {
  let dir: string
  let svc: ProcessService
  let sha256: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-s3-1g-'))
    svc = await spawnService({ STORAGE_DIR: dir, ...s3StoreEnv() })
    // Warm up: the first requests load code and fill the connection pool; what follows must not grow.
    for (let i = 0; i < 3; i++) {
      await fetch(`${svc.api}/s3/upload/warm.bin`, { method: 'PUT', body: new Uint8Array(20 * MiB) })
      await (await fetch(`${svc.api}/s3/download/warm.bin`)).arrayBuffer()
    }
  }, 120_000)
  afterAll(async () => {
    await svc?.stop()
    await rm(dir, { recursive: true, force: true })
  }, 120_000)

  it('uploads and downloads 1 GiB within the memory bound and with the right sha256', { timeout: 600_000 }, async () => {
    const source = generated(GiB, 2026)
    await svc.resetPeakRss()
    const before = await svc.rss()
    // A body of unknown length: parts of 8 MiB, four in flight.
    const res = await fetch(`${svc.api}/s3/upload/${PATH}`, { method: 'PUT', body: source.stream, duplex: 'half' } as RequestInit)
    expect(res.status, await res.clone().text()).toBe(201)
    const info = (await res.json()) as { size: number; sha256: string; driver: string }
    expect(info).toMatchObject({ size: GiB, sha256: source.digest(), driver: 's3' })
    sha256 = info.sha256
    const uploadGrowth = (await svc.peakRss()) - before
    console.log(`[s3 1 GiB] upload: service RSS before ${(before / MiB).toFixed(0)} MiB, peak growth ${(uploadGrowth / MiB).toFixed(1)} MiB`)
    expect(uploadGrowth).toBeLessThan(BOUND)

    await svc.resetPeakRss()
    const beforeDownload = await svc.rss()
    const download = await fetch(`${svc.api}/s3/download/${PATH}`)
    expect(download.headers.get('content-length')).toBe(String(GiB))
    const hash = createHash('sha256')
    let received = 0
    for await (const chunk of download.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk)
      received += chunk.length
    }
    expect(received).toBe(GiB)
    expect(hash.digest('hex')).toBe(sha256)
    const downloadGrowth = (await svc.peakRss()) - beforeDownload
    console.log(`[s3 1 GiB] download: peak growth ${(downloadGrowth / MiB).toFixed(1)} MiB`)
    expect(downloadGrowth).toBeLessThan(BOUND)

    const range = await fetch(`${svc.api}/s3/download/${PATH}`, { headers: { range: 'bytes=-1024' } })
    expect([range.status, range.headers.get('content-range'), (await range.arrayBuffer()).byteLength]).toEqual([206, `bytes ${GiB - 1024}-${GiB - 1}/${GiB}`, 1024])
  })

  it('composes 256 MiB sent in 4 parts server-side, reading them once for its sha256, within the bound', { timeout: 600_000 }, async () => {
    const created = await fetch(`${svc.api}/s3/createupload/big/in-parts.bin`, { method: 'POST' })
    const { uploadId } = (await created.json()) as { uploadId: string }
    const whole = createHash('sha256')
    const partSize = 64 * MiB
    for (let part = 1; part <= 4; part++) {
      const g = generated(partSize, 3000 + part)
      // Hashed here as it is sent, so the expected sha256 of the whole is known without keeping 1 GiB.
      const body = g.stream.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, out) {
            whole.update(chunk)
            out.enqueue(chunk)
          },
        }),
      )
      const res = await fetch(`${svc.api}/s3/uploadpart/${uploadId}?part=${part}`, { method: 'PUT', body, duplex: 'half' } as RequestInit)
      expect(res.status, await res.clone().text()).toBe(200)
    }
    await svc.resetPeakRss()
    const before = await svc.rss()
    const started = performance.now()
    const done = await fetch(`${svc.api}/s3/completeupload/${uploadId}`, { method: 'POST' })
    const seconds = (performance.now() - started) / 1000
    expect(done.status, await done.clone().text()).toBe(201)
    expect(((await done.json()) as { sha256: string }).sha256).toBe(whole.digest('hex'))
    const growth = (await svc.peakRss()) - before
    console.log(`[s3 1 GiB] completion of 4 parts of 64 MiB: ${seconds.toFixed(1)} s, peak growth ${(growth / MiB).toFixed(1)} MiB`)
    expect(growth).toBeLessThan(BOUND)
  })
})
