/**
 * Section 5 (the rest of it is the peak-RSS column of every row): our process at rest, just
 * after start-up, with the `disk` store.
 */
import { join } from 'node:path'
import type { BenchContext } from '../lib/context.js'
import type { Row } from '../lib/results.js'
import { currentRss } from '../lib/rss.js'
import { startService } from '../lib/service.js'
import { median } from '../lib/stats.js'

export async function idleMemory(ctx: BenchContext): Promise<Row[]> {
  const samples: number[] = []
  for (let i = 0; i < ctx.settings.runs; i++) {
    const service = await startService({ storageDir: join(ctx.workDir, 'store'), logFile: join(ctx.workDir, 'service.log') })
    try {
      await fetch(`${service.api}/check`).then((r) => r.arrayBuffer())
      await new Promise((r) => setTimeout(r, 1000))
      samples.push(currentRss(service.pid))
    } finally {
      await service.stop()
    }
  }
  const MiBs = samples.map((b) => b / (1024 * 1024))
  return [
    {
      section: '5. memory',
      name: 'RSS at rest after start-up (one health check served)',
      unit: 'MiB',
      ours: { median: median(MiBs), runs: MiBs },
    },
  ]
}
