/**
 * Memory (issue 10, finding 10): the service's peak RSS while it takes 40 concurrent 64 MiB uploads
 * and serves 40 concurrent 64 MiB downloads, printed, and bounded above its RSS at rest
 * (ABOVE_REST_BOUND_MIB, knobs.ts), the rest bounded too; on Node, and on Bun (its request body
 * stream, and downloads sent by Bun.file).
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, test } from 'vitest'
import { type ProcessService, type Runtime, RUNTIMES } from '../helpers/process-service.js'
import { report, startBuilt, tempDir } from './harness.js'
import { ABOVE_REST_BOUND_MIB, MEMORY, REST_BOUND_MIB } from './knobs.js'

const MiB = 1024 * 1024
const PROBE = fileURLToPath(new URL('./memory-probe.mjs', import.meta.url))

type Usage = Record<'rss' | 'heapTotal' | 'heapUsed' | 'external' | 'arrayBuffers', number>

/** Where the memory is, from the service's own process.memoryUsage() (memory-probe.mjs), in MiB. */
function breakdown(u: Usage): string {
  const mib = (n: number) => `${Math.round(n / MiB)}`
  // external includes arrayBuffers (Buffers); the rest of the RSS is native: code, stacks, malloc, libuv.
  return `rss ${mib(u.rss)} = V8 heap ${mib(u.heapTotal)} (used ${mib(u.heapUsed)}) + Buffers ${mib(u.arrayBuffers)} + other external ${mib(u.external - u.arrayBuffers)} + native ${mib(u.rss - u.heapTotal - u.external)}`
}
let svc: ProcessService | undefined
afterAll(async () => {
  await svc?.stop('SIGKILL')
})

/** `size` bytes: one random MiB sent over and over behind a unique first MiB (cheap to make, never held whole). */
function body(size: number, base: Buffer): ReadableStream<Uint8Array> {
  let sent = 0
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close()
      const chunk = sent === 0 ? randomBytes(Math.min(MiB, size)) : base.subarray(0, Math.min(MiB, size - sent))
      sent += chunk.length
      controller.enqueue(chunk)
    },
  })
}

const upload = (api: string, path: string, base: Buffer) =>
  fetch(`${api}/disk/upload/${path}`, { method: 'PUT', body: body(MEMORY.fileBytes, base), duplex: 'half', headers: { 'Content-Type': 'video/mp4' } } as RequestInit)

/** Downloads `path`, counting the bytes as they come (nothing kept). */
async function download(api: string, path: string): Promise<number> {
  const res = await fetch(`${api}/disk/download/${path}`)
  if (res.status !== 200) throw new Error(`download of ${path} answers ${res.status}`)
  let bytes = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length
  return bytes
}

/** How each runtime loads the probe before the service. */
const PROBE_ARGS: Record<Runtime, string[]> = { node: ['--import', PROBE], bun: ['--preload', PROBE] }

test.each(RUNTIMES)(`on %s: peak RSS under ${MEMORY.uploads} concurrent ${MEMORY.fileBytes / MiB} MiB uploads and ${MEMORY.downloads} downloads stays under its bound`, async (runtime) => {
  const dir = await tempDir(`memory-${runtime}`)
  const name = runtime === 'node' ? 'memory' : 'memory on Bun'
  try {
    const probeFile = join(dir.path, 'memory-probe.json')
    svc = await startBuilt({ STORAGE_DIR: join(dir.path, 'data'), MEMORY_PROBE_FILE: probeFile }, { runtime, runtimeArgs: PROBE_ARGS[runtime] })
    const api = svc.api
    const base = randomBytes(MiB)
    const sources = ['memory/source-0.mp4', 'memory/source-1.mp4', 'memory/source-2.mp4', 'memory/source-3.mp4']
    for (const path of sources) expect((await upload(api, path, base)).status).toBe(201)
    const atRest = await svc.rss()
    const restMiB = Math.round(atRest / MiB)
    const bound = restMiB + ABOVE_REST_BOUND_MIB[runtime]
    await svc.resetPeakRss()
    svc.child.kill('SIGUSR2') // the probe's peaks too
    await new Promise((r) => setTimeout(r, 100))

    const results = await Promise.allSettled([
      ...Array.from({ length: MEMORY.uploads }, async (_, i) => {
        const res = await upload(api, `memory/upload-${i}.mp4`, base)
        await res.body?.cancel()
        if (res.status !== 201) throw new Error(`upload ${i} answers ${res.status}`)
      }),
      ...Array.from({ length: MEMORY.downloads }, async (_, i) => {
        const bytes = await download(api, sources[i % sources.length]!)
        if (bytes !== MEMORY.fileBytes) throw new Error(`download ${i} gave ${bytes} bytes`)
      }),
    ])
    const peakMiB = Math.round((await svc.peakRss()) / MiB)
    await new Promise((r) => setTimeout(r, 100))
    const probe = JSON.parse(await readFile(probeFile, 'utf8')) as { peak: Usage; atPeakRss: Usage }
    const transfers = MEMORY.uploads + MEMORY.downloads
    console.log(
      `[reliability] ${name}: at the highest RSS sampled: ${breakdown(probe.atPeakRss)} MiB; peaks of each part: heap ${Math.round(probe.peak.heapTotal / MiB)}, ` +
        `Buffers ${Math.round(probe.peak.arrayBuffers / MiB)} MiB; above rest: ${((peakMiB * MiB - atRest) / transfers / MiB).toFixed(2)} MiB per transfer (${transfers} at once)`,
    )
    const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))
    console.log(`[reliability] ${name}: RSS at rest ${Math.round(atRest / MiB)} MiB, peak ${peakMiB} MiB (bound: rest + ${ABOVE_REST_BOUND_MIB[runtime]} = ${bound} MiB)`)
    await report(name, {
      peakRssMiB: peakMiB,
      failed: [...failures, ...(peakMiB > bound ? [`peak RSS ${peakMiB} MiB over the bound of ${bound} MiB`] : [])],
    })
    expect(failures).toEqual([])
    expect(restMiB).toBeLessThanOrEqual(REST_BOUND_MIB)
    expect(peakMiB).toBeLessThanOrEqual(bound)
  } finally {
    await svc?.stop('SIGKILL')
    await dir.remove()
  }
})
