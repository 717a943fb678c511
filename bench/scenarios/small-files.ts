/**
 * Section 2: 4 KiB downloads and uploads under load (wrk, 32 connections, fixed duration) through
 * the `disk` store, against the same nginx setup: requests per second, p50 and p99 latency.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { compare, type Contender } from '../lib/compare.js'
import type { BenchContext } from '../lib/context.js'
import { upload } from '../lib/curl.js'
import { startNginx } from '../lib/nginx.js'
import { comparedRow, type Row, type RunSample } from '../lib/results.js'
import { loadSample } from '../lib/samples.js'
import { startService } from '../lib/service.js'
import { sizeLabel } from '../lib/settings.js'
import { load, type LoadOptions } from '../lib/wrk.js'

const SECTION = '2. small files'
/** Upload paths cycle over this many names per wrk thread: most uploads replace a file. */
const NAMES = 1024

export async function smallFiles(ctx: BenchContext): Promise<Row[]> {
  const { settings } = ctx
  const storageDir = join(ctx.workDir, 'store')
  const service = await startService({ storageDir, logFile: join(ctx.workDir, 'service.log') })
  const nginx = await startNginx({ staticRoot: storageDir, davRoot: join(ctx.workDir, 'dav'), prefix: join(ctx.workDir, 'nginx') })
  try {
    const small = join(ctx.workDir, 'small.bin')
    writeFileSync(small, Buffer.alloc(settings.smallBytes, 0x61))
    await upload(`${service.api}/disk/upload/small/get.bin`, small)
    const size = sizeLabel(settings.smallBytes)
    const base = { connections: settings.connections, threads: settings.wrkThreads }
    const contender = (pid: number, options: Omit<LoadOptions, 'seconds' | 'connections' | 'threads'>): Contender => ({
      pids: [pid],
      warmup: () => load({ ...base, ...options, seconds: settings.warmupSeconds }),
      measure: async (): Promise<RunSample> => {
        return loadSample(await load({ ...base, ...options, seconds: settings.loadSeconds }))
      },
    })
    const origin = (url: string) => `${new URL(url).origin}/`
    const rows: Row[] = []

    ctx.log(`download ${size} x ${settings.connections} connections`)
    const gets = await compare(
      settings.runs,
      contender(service.pid, { method: 'GET', url: `${service.api}/disk/download/small/get.bin` }),
      contender(nginx.workerPid, { method: 'GET', url: `${nginx.url}/static/small/get.bin` }),
    )
    rows.push(
      comparedRow({ section: SECTION, name: `download ${size} (GET)`, unit: 'req/s', peerName: 'nginx static GET', ...gets }),
    )

    ctx.log(`upload ${size} x ${settings.connections} connections`)
    const put = { method: 'PUT' as const, names: NAMES, bodyBytes: settings.smallBytes }
    const puts = await compare(
      settings.runs,
      contender(service.pid, { ...put, url: origin(service.api), pathPrefix: '/filestorage/v1/disk/upload/small/put/' }),
      contender(nginx.workerPid, { ...put, url: origin(nginx.url), pathPrefix: '/dav/small/put/' }),
    )
    rows.push(
      comparedRow({
        section: SECTION,
        name: `upload ${size} (PUT)`,
        unit: 'req/s',
        peerName: 'nginx WebDAV PUT',
        note: `${NAMES} names per wrk thread, so most uploads replace a file`,
        ...puts,
      }),
    )
    return rows
  } finally {
    await nginx.stop()
    await service.stop()
  }
}
