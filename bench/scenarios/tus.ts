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
  const name = `upload ${sizeLabel(tusBytes)} in ${sizeLabel(tusChunkBytes)} PATCHes (tus-js-client)`
  const service = await startService({ storageDir: join(ctx.workDir, 'store'), logFile: join(ctx.workDir, 'service.log') })
  try {
    const endpoint = `${service.api}/disk/tus/`
    const probe = await speaksTus(endpoint)
    if (!probe.ok) {
      return [
        unavailable(
          SECTION,
          name,
          'MB/s',
          `our service has no tus endpoint yet (OPTIONS /filestorage/v1/disk/tus/ answered ${probe.status} without Tus-Version; issue-tus)`,
        ),
      ]
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
      let n = 0
      const measure = async (endpoint: string, clean?: () => void) => {
        const { seconds } = await tusUpload({
          endpoint,
          file: source,
          chunkBytes: tusChunkBytes,
          // `path` places the file in our store; @tus/server keeps metadata as it is.
          metadata: { path: `bench/tus-${++n}.bin`, filename: `tus-${n}.bin`, filetype: 'application/octet-stream' },
        })
        clean?.()
        return transferSample(tusBytes, seconds)
      }
      const cleanPeer = () => {
        for (const f of readdirSync(peerDir)) rmSync(join(peerDir, f), { force: true })
      }
      ctx.log(name)
      const ours = () => measure(endpoint)
      const theirs = () => measure(peerEndpoint, cleanPeer)
      const result = await compare(
        runs,
        { pids: [service.pid], warmup: ours, measure: ours },
        { pids: [peer.pid], warmup: theirs, measure: theirs },
      )
      return [
        comparedRow({
          section: SECTION,
          name,
          unit: 'MB/s',
          peerName: '@tus/server + @tus/file-store',
          note: 'ours computes the sha256 while streaming; @tus/file-store does not',
          ...result,
        }),
      ]
    } finally {
      await peer.stop()
    }
  } finally {
    await service.stop()
  }
}
