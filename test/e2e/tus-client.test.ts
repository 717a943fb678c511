/**
 * The real tus-js-client (from npm) against the service running as its own process, on every store,
 * through a loopback TCP proxy the test controls: a cut connection, a restart of the service, and two
 * instances sharing one upload. The proxy counts the bytes the client sends, so "no bytes sent twice
 * beyond one chunk" is measured on the wire, request headers included. On Node every store; on Bun
 * the disk store (the runtime's part, request bodies cut and resumed, is the same for every store).
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web'
import { type HttpRequest, Upload, type UploadOptions } from 'tus-js-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ProcessService, type Runtime, spawnService } from '../helpers/process-service.js'
import { generated } from '../helpers/streams.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { createTusUpload, expectStoreServed, storeEnv, tusStores, uploadMetadata } from '../helpers/tus.js'

const MiB = 1024 * 1024
const BIG_TEST_MS = 300_000

interface RequestRecord {
  method: string
  url: string
  /** The request's Upload-Offset (PATCH). */
  offset?: number
  /** Absent when no answer came (the connection was cut). */
  status?: number
  /** The answer's Upload-Offset (HEAD, PATCH). */
  answeredOffset?: number
}

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'filestorage-tus-e2e-'))
})
afterAll(async () => rm(dir, { recursive: true, force: true }))

/** A file of `size` pseudo-random bytes on disk (never whole in memory), with its sha256. */
async function sourceFile(name: string, size: number, seed: number): Promise<{ path: string; sha256: string; size: number }> {
  const path = join(dir, name)
  const g = generated(size, seed)
  await pipeline(Readable.fromWeb(g.stream as unknown as NodeWebReadableStream<Uint8Array>), createWriteStream(path))
  return { path, sha256: g.digest(), size }
}

/** Runs tus-js-client on a file to success (or failure), recording every request and its answer. */
async function runUpload(file: string, options: UploadOptions): Promise<{ url: string; requests: RequestRecord[] }> {
  const requests: RequestRecord[] = []
  const records = new Map<HttpRequest, RequestRecord>()
  const header = (value: string | undefined) => (value === undefined || value === '' ? undefined : Number(value))
  const url = await new Promise<string>((resolve, reject) => {
    const upload: Upload = new Upload(createReadStream(file) as unknown as Buffer, {
      retryDelays: [0, 100, 250, 500, 1000, 1000, 1000, 1000],
      ...options,
      onBeforeRequest(req) {
        const record: RequestRecord = { method: req.getMethod(), url: req.getURL() }
        const offset = header(req.getHeader('Upload-Offset'))
        if (offset !== undefined) record.offset = offset
        requests.push(record)
        records.set(req, record)
      },
      onAfterResponse(req, res) {
        const record = records.get(req)!
        record.status = res.getStatus()
        const offset = header(res.getHeader('Upload-Offset'))
        if (offset !== undefined) record.answeredOffset = offset
      },
      onSuccess: () => resolve(upload.url!),
      onError: reject,
    })
    upload.start()
  })
  return { url, requests }
}

async function fileInfo(svc: ProcessService, store: string, path: string) {
  const res = await fetch(`${svc.api}/${store}/info/${path}`)
  expect(res.status, await res.clone().text()).toBe(200)
  return (await res.json()) as { size: number; sha256: string; path: string }
}

/**
 * How the client came back after the PATCH the test cut: the first HEAD answered after it (with the
 * offset to resume from) and the PATCH that followed that HEAD.
 */
function resumption(requests: RequestRecord[]) {
  const cutIndex = requests.findIndex((r) => r.method === 'PATCH' && r.status === undefined)
  expect(cutIndex, 'the test cut a PATCH').toBeGreaterThan(0)
  const after = requests.slice(cutIndex + 1)
  const head = after.find((r) => r.method === 'HEAD' && r.status === 200)
  const next = head && after.slice(after.indexOf(head) + 1).find((r) => r.method === 'PATCH')
  return { cut: requests[cutIndex]!, head, next }
}

const RUNS: [string, Runtime][] = [...tusStores().map((store): [string, Runtime] => [store, 'node']), ['disk', 'bun']]

for (const [store, runtime] of RUNS) {
  describe(`tus-js-client against the service: ${store} store${runtime === 'bun' ? ', on Bun' : ''}`, () => {
    it(
      'a 40 MiB upload cut part-way resumes from the offset HEAD reports, ends with its sha256, and re-sends less than one chunk',
      async () => {
        // What the proof needs: a cut inside a chunk that follows a whole one, 8 MiB in (more than the
        // socket buffers between client and service hold, so that the service has kept some of the cut
        // chunk and the client must resume from HEAD's offset, not from a chunk's start), and a file
        // longer than a chunk (starting over would re-send more than one). More chunks before the cut
        // add only bytes, which on FerretDB cost a scan of the whole bucket per part at completion
        // (docs/mongo.md).
        const chunkSize = 16 * MiB
        const source = await sourceFile(`cut-${store}.bin`, 40 * MiB, 11)
        const svc = await spawnService({ STORAGE_DIR: join(dir, `cut-${store}-${runtime}`), ...storeEnv(store) }, { runtime })
        const proxy = await startTcpProxy(svc.port)
        try {
          await expectStoreServed(svc.api, store)
          const cutAt = 24 * MiB // half-way into the second chunk (16 to 32 MiB)
          let sentBeforeCut = 0 // what the client had sent (headers included) when the connection went
          proxy.when(cutAt, () => {
            sentBeforeCut = proxy.received()
            proxy.cutAll()
          })
          const { requests } = await runUpload(source.path, {
            endpoint: `${proxy.origin}/filestorage/v1/${store}/tus/`,
            chunkSize,
            metadata: { dir: 'e2e', filename: 'cut.bin', filetype: 'application/x-test' },
          })

          expect(requests.filter((r) => r.method === 'POST')).toHaveLength(1)
          const { cut, head, next } = resumption(requests)
          const resumeAt = head!.answeredOffset!
          // The bytes of the cut chunk that reached the service were kept: the client resumes inside that chunk.
          expect(resumeAt).toBeGreaterThan(cut.offset!)
          expect(resumeAt).toBeLessThan(sentBeforeCut)
          expect(next?.offset).toBe(resumeAt)

          const info = await fileInfo(svc, store, 'e2e/cut.bin')
          expect(info).toMatchObject({ size: source.size, sha256: source.sha256 })
          const resent = proxy.received() - source.size
          console.log(
            `[tus e2e ${store}] 40 MiB, chunks of 16 MiB, cut after ${sentBeforeCut} B sent: resumed at ${resumeAt} B; ` +
              `sent ${proxy.received()} B in all, ${resent} B beyond the file (headers included)`,
          )
          expect(resent).toBeLessThan(chunkSize)
        } finally {
          await proxy.close()
          await svc.stop()
        }
      },
      BIG_TEST_MS,
    )

    it(
      'an upload in flight when the service restarts resumes on the new process and completes',
      async () => {
        const source = await sourceFile(`restart-${store}.bin`, 24 * MiB, 12)
        const env = { STORAGE_DIR: join(dir, `restart-${store}-${runtime}`), SHUTDOWN_TIMEOUT_SECONDS: '5', ...storeEnv(store) }
        let svc = await spawnService(env, { runtime })
        const first = svc.pid
        const proxy = await startTcpProxy(svc.port)
        let restart: Promise<void> | undefined
        try {
          await expectStoreServed(svc.api, store)
          proxy.when(12 * MiB, () => { // in the second of three chunks
            proxy.pause() // the client sees its connection cut, and no service, until the new one is up
            restart = (async () => {
              expect((await svc.stop('SIGTERM')).code).toBe(0)
              svc = await spawnService(env, { runtime })
              proxy.retarget(svc.port)
              proxy.resume()
            })()
            restart.catch(() => {}) // awaited below
          })
          const { requests } = await runUpload(source.path, {
            endpoint: `${proxy.origin}/filestorage/v1/${store}/tus/`,
            chunkSize: 8 * MiB,
            retryDelays: Array.from({ length: 60 }, () => 250), // up to 15 s without a service
            metadata: { path: 'e2e/restarted.bin' },
          })
          await restart
          expect(svc.pid).not.toBe(first)
          expect(requests.filter((r) => r.method === 'POST')).toHaveLength(1) // resumed, never started over
          const { head, next } = resumption(requests)
          expect(head!.answeredOffset).toBeGreaterThan(0)
          expect(next?.offset).toBe(head!.answeredOffset)
          expect(await fileInfo(svc, store, 'e2e/restarted.bin')).toMatchObject({ size: source.size, sha256: source.sha256 })
        } finally {
          await restart?.catch(() => {})
          await proxy.close()
          await svc.stop()
        }
      },
      BIG_TEST_MS,
    )

    it('works with the client\'s other modes: data sent with the creation, a stream of unknown length, POST for PATCH', async () => {
      const svc = await spawnService({ STORAGE_DIR: join(dir, `modes-${store}-${runtime}`), ...storeEnv(store) }, { runtime })
      try {
        await expectStoreServed(svc.api, store)
        const endpoint = `${svc.api}/${store}/tus/`
        const source = await sourceFile(`modes-${store}.bin`, 5 * MiB + 3, 14)
        const modes: [string, Partial<UploadOptions>][] = [
          ['with-creation.bin', { uploadDataDuringCreation: true, chunkSize: 2 * MiB }],
          ['override.bin', { overridePatchMethod: true, chunkSize: 2 * MiB }],
        ]
        for (const [name, options] of modes) {
          const { requests } = await runUpload(source.path, { endpoint, ...options, metadata: { dir: 'modes', filename: name } })
          expect(requests.every((r) => r.status !== undefined && r.status < 300), name).toBe(true)
          if (options.overridePatchMethod) expect(requests.map((r) => r.method)).not.toContain('PATCH')
          if (options.uploadDataDuringCreation) expect(requests.filter((r) => r.method === 'PATCH')).toHaveLength(2) // 2 of 3 chunks
          expect(await fileInfo(svc, store, `modes/${name}`)).toMatchObject({ size: source.size, sha256: source.sha256 })
        }
        // A stream whose length the client learns only at its end (creation-defer-length).
        const g = generated(3 * MiB + 5, 15)
        const stream = Readable.fromWeb(g.stream as unknown as NodeWebReadableStream<Uint8Array>)
        await new Promise<void>((resolve, reject) => {
          new Upload(stream as unknown as Buffer, {
            endpoint,
            uploadLengthDeferred: true,
            chunkSize: MiB,
            metadata: { dir: 'modes', filename: 'deferred.bin' },
            onSuccess: () => resolve(),
            onError: reject,
          }).start()
        })
        expect(await fileInfo(svc, store, 'modes/deferred.bin')).toMatchObject({ size: 3 * MiB + 5, sha256: g.digest() })
      } finally {
        await svc.stop()
      }
    })

    it(
      'two instances on one store share an upload: created on one, every HEAD and PATCH taken by the other',
      async () => {
        // disk: two processes on one folder; mongo: two processes on one database.
        const env = { STORAGE_DIR: join(dir, `shared-${store}-${runtime}`), ...storeEnv(store) }
        const [a, b] = await Promise.all([spawnService(env, { runtime }), spawnService(env, { runtime })])
        try {
          await expectStoreServed(a.api, store)
          const source = await sourceFile(`shared-${store}.bin`, 12 * MiB, 13)
          const { res, location } = await createTusUpload(`${a.api}/${store}/tus/`, {
            'Upload-Length': String(source.size),
            'Upload-Metadata': uploadMetadata({ path: 'e2e/shared.bin' }),
          })
          expect(res.status).toBe(201)
          const onB = location.replace(a.origin, b.origin)
          const { requests } = await runUpload(source.path, { uploadUrl: onB, chunkSize: 2 * MiB })
          expect(requests.length).toBeGreaterThanOrEqual(7) // a HEAD, then six PATCHes
          for (const r of requests) expect(r.url).toBe(onB)
          expect(requests.filter((r) => r.method === 'PATCH').every((r) => r.status === 204)).toBe(true)
          expect(await fileInfo(a, store, 'e2e/shared.bin')).toMatchObject({ size: source.size, sha256: source.sha256 })
        } finally {
          await Promise.all([a.stop(), b.stop()])
        }
      },
      BIG_TEST_MS,
    )
  })
}
