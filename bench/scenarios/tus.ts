/**
 * Section 3: a resumable upload through our tus endpoint (`/filestorage/v1/disk/tus/`) against
 * `@tus/server` with `@tus/file-store`, the same tus-js-client upload against both. Measured once
 * our service has the endpoint (issue-tus); "not available" until then.
 */
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { compare } from '../lib/compare.js'
import type { BenchContext } from '../lib/context.js'
import { freePort } from '../lib/ports.js'
import { answers, startProcess, waitUntil } from '../lib/processes.js'
import { comparedRow, unavailable, type Row } from '../lib/results.js'
import { PROJECT_DIR, startService } from '../lib/service.js'
import { sizeLabel } from '../lib/settings.js'
import { transferSample } from '../lib/samples.js'
import { speaksTus, tusUpload } from '../lib/tus-client.js'

const SECTION = '3. resumable upload (tus)'
const PEER_SCRIPT = join(PROJECT_DIR, 'bench', 'peers', 'tus-server.ts')

export async function tus(ctx: BenchContext): Promise<Row[]> {
  const { runs, tusBytes, tusChunkBytes } = ctx.settings
  // PATCHes of a fixed size, as a client that wants to resume cheaply sends them, and the whole
  // upload in one PATCH, which is what tus-js-client does by default (chunkSize Infinity).
  const shapes = [
    { chunkBytes: tusChunkBytes, name: `upload ${sizeLabel(tusBytes)} in ${sizeLabel(tusChunkBytes)} PATCHes (tus-js-client)` },
    { chunkBytes: Number.POSITIVE_INFINITY, name: `upload ${sizeLabel(tusBytes)} in one PATCH (tus-js-client's default)` },
  ]
  const service = await startService({ storageDir: join(ctx.workDir, 'store'), logFile: join(ctx.workDir, 'service.log') })
  try {
    const endpoint = `${service.api}/disk/tus/`
    const probe = await speaksTus(endpoint)
    if (!probe.ok) {
      const reason = `our service has no tus endpoint yet (OPTIONS /filestorage/v1/disk/tus/ answered ${probe.status} without Tus-Version; issue-tus)`
      return shapes.map((shape) => unavailable(SECTION, shape.name, 'MB/s', reason))
    }
    const source = ctx.sourceFile(tusBytes)
    const peerDir = join(ctx.workDir, 'peer-files')
    const port = await freePort()
    const peer = startProcess(process.execPath, ['--import', 'tsx', PEER_SCRIPT], {
      env: { ...process.env, NODE_ENV: 'production', PORT: String(port), TUS_DIR: peerDir },
      cwd: PROJECT_DIR,
      logFile: join(ctx.workDir, 'tus-peer.log'),
    })
    const peerEndpoint = `http://127.0.0.1:${port}/files/`
    await waitUntil('the tus peer', peer, () => answers(peerEndpoint, { method: 'OPTIONS' }))
    try {
      const measure = async (endpoint: string, chunkBytes: number, clean?: () => void, token?: string) => {
        const { seconds } = await tusUpload({
          endpoint,
          ...(token ? { token } : {}),
          file: source,
          chunkBytes,
          // `path` places the file in our store (each upload replaces it); @tus/server keeps metadata as it is.
          metadata: { path: 'bench/tus.bin', filename: 'tus.bin', filetype: 'application/octet-stream' },
        })
        clean?.()
        return transferSample(tusBytes, seconds)
      }
      const cleanPeer = () => {
        for (const f of readdirSync(peerDir)) rmSync(join(peerDir, f), { force: true })
      }
      const rows: Row[] = []
      for (const shape of shapes) {
        ctx.log(shape.name)
        const ours = () => measure(endpoint, shape.chunkBytes, undefined, service.token)
        const theirs = () => measure(peerEndpoint, shape.chunkBytes, cleanPeer)
        const result = await compare(
          runs,
          { pids: [service.pid], warmup: ours, measure: ours },
          { pids: [peer.pid], warmup: theirs, measure: theirs },
        )
        rows.push(
          comparedRow({
            section: SECTION,
            name: shape.name,
            unit: 'MB/s',
            peerName: '@tus/server + @tus/file-store',
            note: 'ours computes the sha256 while streaming; @tus/file-store does not',
            ...result,
          }),
        )
      }
      return rows
    } finally {
      await peer.stop()
    }
  } finally {
    await service.stop()
  }
}
