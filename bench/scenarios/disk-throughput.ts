/**
 * Section 1: a large download and a large upload through the `disk` store, against nginx on the
 * same file (static GET with sendfile; WebDAV PUT), with curl as the client of both; the same
 * download through the nginx gateway (deploy/nginx/nginx.conf) in front of the service, proxying
 * its answer, and in front of a second instance on the same store with ACCEL_REDIRECT_LOCATION,
 * where nginx sends the file itself (issue 12's target: 0.9x nginx static); and the service on Bun
 * (the bun adapter, Bun.file and sendfile for the download), against nginx static for the download
 * and against the node adapter for the upload (issue 22's targets: 0.9x both).
 * Also the cost of the sha256 our uploads must compute while streaming (SPEC 3.4), measured alone.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { compare } from '../lib/compare.js'
import type { BenchContext } from '../lib/context.js'
import { download, upload, type Transfer } from '../lib/curl.js'
import { startGateway, startNginx } from '../lib/nginx.js'
import { comparedRow, figureOf, type Row, type RunSample } from '../lib/results.js'
import { transferSample } from '../lib/samples.js'
import { startService } from '../lib/service.js'
import { sizeLabel } from '../lib/settings.js'
import { megabytesPerSecond } from '../lib/stats.js'

const SECTION = '1. disk throughput'
/** The internal location of deploy/nginx/nginx.conf. */
const ACCEL_LOCATION = '/_filestorage/disk/'
const rate = (t: Transfer): RunSample => transferSample(t.bytes, t.seconds)

export async function diskThroughput(ctx: BenchContext): Promise<Row[]> {
  const { runs, largeBytes } = ctx.settings
  const source = ctx.sourceFile(largeBytes)
  const storageDir = join(ctx.workDir, 'store')
  const service = await startService({ storageDir, logFile: join(ctx.workDir, 'service.log') })
  const nginx = await startNginx({ staticRoot: storageDir, davRoot: join(ctx.workDir, 'dav'), prefix: join(ctx.workDir, 'nginx') })
  const gateway = await startGateway(new URL(service.api).host)
  const accelService = await startService({
    storageDir,
    logFile: join(ctx.workDir, 'service-accel.log'),
    env: { ACCEL_REDIRECT_LOCATION: ACCEL_LOCATION },
  })
  const accelGateway = await startGateway(new URL(accelService.api).host, { storageDir })
  const bunService = await startService({ storageDir, runtime: 'bun', logFile: join(ctx.workDir, 'service-bun.log') })
  try {
    // The file both serve: stored through our API, served by nginx from our store's folder.
    await upload(`${service.api}/disk/upload/bench/large.bin`, source, undefined, service.token)
    const size = sizeLabel(largeBytes)
    const rows: Row[] = []

    /** Our transfer against nginx's, warmed up and measured in turns, as a row of the table. */
    const versusNginx = async (
      name: string,
      peerName: string,
      ours: () => Promise<RunSample>,
      peer: () => Promise<RunSample>,
      note?: string,
      oursPids = service.pids,
      target?: number,
    ) => {
      ctx.log(name)
      const figures = await compare(
        runs,
        { pids: oursPids, warmup: ours, measure: ours },
        { pids: [nginx.workerPid], warmup: peer, measure: peer },
      )
      rows.push(
        comparedRow({
          section: SECTION,
          name,
          unit: 'MB/s',
          peerName,
          ...(note ? { note } : {}),
          ...(target !== undefined ? { target } : {}),
          ...figures,
        }),
      )
    }

    await versusNginx(
      `download ${size} (GET)`,
      'nginx static GET (sendfile)',
      () => download(`${service.api}/disk/download/bench/large.bin`, undefined, service.token).then(rate),
      () => download(`${nginx.url}/static/bench/large.bin`).then(rate),
    )
    // The gateway proxying our answer, then sending the file itself (ACCEL_REDIRECT_LOCATION).
    await versusNginx(
      `download ${size} through the nginx gateway (GET)`,
      'nginx static GET (sendfile)',
      () => download(`${gateway.url}/filestorage/v1/disk/download/bench/large.bin`, undefined, service.token).then(rate),
      () => download(`${nginx.url}/static/bench/large.bin`).then(rate),
      'deploy/nginx/nginx.conf: nginx proxies the service; CPU and RSS of the service and the gateway together',
      [...service.pids, ...gateway.pids],
    )
    await versusNginx(
      `download ${size} through the nginx gateway with X-Accel-Redirect (GET)`,
      'nginx static GET (sendfile)',
      () => download(`${accelGateway.url}/filestorage/v1/disk/download/bench/large.bin`, undefined, service.token).then(rate),
      () => download(`${nginx.url}/static/bench/large.bin`).then(rate),
      'ACCEL_REDIRECT_LOCATION: the service authorizes and resolves, nginx sends the file; CPU and RSS of both together',
      [...accelService.pids, ...accelGateway.pids],
      0.9,
    )
    await versusNginx(
      `download ${size} on Bun (GET)`,
      'nginx static GET (sendfile)',
      () => download(`${bunService.api}/disk/download/bench/large.bin`, undefined, service.token).then(rate),
      () => download(`${nginx.url}/static/bench/large.bin`).then(rate),
      'the bun adapter: Bun.file, sendfile',
      bunService.pids,
      0.9,
    )
    await versusNginx(
      `upload ${size} (PUT)`,
      'nginx WebDAV PUT',
      () => upload(`${service.api}/disk/upload/bench/upload.bin`, source, undefined, service.token).then(rate),
      () => upload(`${nginx.url}/dav/upload.bin`, source).then(rate),
      'ours computes the sha256 while streaming; nginx does not',
    )
    ctx.log(`upload ${size} on Bun (PUT)`)
    const onBun = () => upload(`${bunService.api}/disk/upload/bench/upload-bun.bin`, source, undefined, service.token).then(rate)
    const onNode = () => upload(`${service.api}/disk/upload/bench/upload-node.bin`, source, undefined, service.token).then(rate)
    rows.push(
      comparedRow({
        section: SECTION,
        name: `upload ${size} on Bun (PUT)`,
        unit: 'MB/s',
        peerName: 'the same on Node',
        target: 0.9,
        note: 'the bun adapter against the node adapter, both computing the sha256',
        ...(await compare(runs, { pids: bunService.pids, warmup: onBun, measure: onBun }, { pids: service.pids, warmup: onNode, measure: onNode })),
      }),
    )

    ctx.log('sha256 alone')
    const hashing = Array.from({ length: runs }, () => ({ value: sha256Rate(largeBytes) }))
    rows.push({
      section: SECTION,
      name: `sha256 of ${size} in Node, no I/O`,
      unit: 'MB/s',
      ours: figureOf(hashing),
      note: 'the CPU floor of any upload that must hash (one core)',
    })
    return rows
  } finally {
    await bunService.stop()
    await accelGateway.stop()
    await accelService.stop()
    await gateway.stop()
    await nginx.stop()
    await service.stop()
  }
}

/** MB/s of node:crypto sha256 over `bytes` bytes, fed in 64 KiB chunks as a socket delivers them. */
function sha256Rate(bytes: number): number {
  const chunk = Buffer.alloc(64 * 1024, 1)
  const hash = createHash('sha256')
  const started = performance.now()
  for (let done = 0; done < bytes; done += chunk.length) hash.update(chunk)
  hash.digest()
  return megabytesPerSecond(bytes, (performance.now() - started) / 1000)
}
