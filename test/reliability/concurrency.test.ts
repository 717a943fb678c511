/**
 * Concurrency audit (issue 10, finding 1; issue 12): 32 writers and 32 readers over 8 paths. On the
 * disk store on one process, on two processes sharing the folder, on one service with WORKERS=2
 * (two cluster workers on one socket), and once more on Bun with WORKERS=2 (two processes binding
 * the port with SO_REUSEPORT, large reads sent by Bun.file); on mongo and s3 on two processes
 * sharing the store. Zero mismatches allowed, during the run, after it, and after a restart.
 */
import { afterAll, describe, expect, test } from 'vitest'
import type { ProcessService, Runtime } from '../helpers/process-service.js'
import { finalStateProblems, runConcurrencyAudit } from './concurrency-audit.js'
import { auditedStores, internalUsage, report, startBuilt, storeEnv, tempDir, trackPeakRss } from './harness.js'
import { expectNone } from './expect-none.js'
import { CONCURRENCY } from './knobs.js'
import { s3Leftovers } from './s3-leftovers.js'

const started: ProcessService[] = []
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')))
})

async function startProcesses(count: number, env: Record<string, string>, runtime: Runtime): Promise<ProcessService[]> {
  const services = await Promise.all(Array.from({ length: count }, () => startBuilt(env, { runtime })))
  started.push(...services)
  return services
}

describe.each(auditedStores('the concurrency audit'))('concurrency audit on the %s store', (store) => {
  // Every way of serving on the disk store, whose locks and commit are the process's own; on mongo
  // and s3, whose writers meet only in the store, two processes (each with 16 writers of its own
  // and its own sweeper) prove what one process and WORKERS=2 would, and more.
  const setups: { label: string; what: string; processes: number; workers: number; runtime: Runtime }[] =
    store === 'disk'
      ? [
          { label: 'x1', what: '1 process', processes: 1, workers: 1, runtime: 'node' },
          { label: 'x2', what: '2 processes', processes: 2, workers: 1, runtime: 'node' },
          { label: 'WORKERS=2', what: '1 service with WORKERS=2', processes: 1, workers: 2, runtime: 'node' },
          { label: 'Bun WORKERS=2', what: '1 service on Bun with WORKERS=2', processes: 1, workers: 2, runtime: 'bun' },
        ]
      : [{ label: 'x2', what: '2 processes', processes: 2, workers: 1, runtime: 'node' }]
  test.each(setups)('$what on one store: every read shows one version written, and so does every path after a restart', async ({ label, processes, workers, runtime }) => {
    const dir = await tempDir(`audit-${store}`)
    try {
      const env = { STORAGE_DIR: dir.path, ...storeEnv(store) }
      const services = await startProcesses(processes, { ...env, WORKERS: String(workers) }, runtime)
      const apis = services.map((s) => s.api)
      const rss = trackPeakRss(() => services)
      const audit = await runConcurrencyAudit({ apis, store, dir: `audit-${processes}-${workers}-${runtime}` })
      const after = await finalStateProblems(apis, store, audit.log, audit.paths)
      const peakRssMiB = await rss.stop()

      await Promise.all(services.map((s) => s.stop('SIGTERM')))
      const restarted = await startProcesses(1, env, runtime)
      const afterRestart = await finalStateProblems([restarted[0]!.api], store, audit.log, audit.paths)
      const changed = audit.paths.filter((p) => afterRestart.held.get(p) !== after.held.get(p))
      await restarted[0]!.stop('SIGTERM')
      // What the store keeps beside the files once every write is finished (disk: large temporary files).
      const leftovers = store === 'disk' ? (await internalUsage(dir.path)).large : store === 's3' ? (await s3Leftovers(env, audit.paths.filter((p) => after.held.get(p)))).detail : undefined

      const kinds = {
        'during the run': audit.mismatches,
        'a write': audit.writeProblems,
        'after the run': after.problems,
        'after a restart': afterRestart.problems,
        'changed across the restart': changed,
        'left behind': leftovers ?? [],
      }
      const failed = Object.entries(kinds).flatMap(([kind, problems]) => problems.map((p) => `${kind}: ${p}`))
      await report(`concurrency ${store} ${label}`, {
        readsAudited: audit.readsAudited,
        mismatches: failed.length - (leftovers?.length ?? 0),
        ...(leftovers ? { leftoversFound: leftovers.length } : {}),
        peakRssMiB,
        failed: Object.entries(kinds)
          .filter(([, problems]) => problems.length > 0)
          .map(([kind, problems]) => `${kind}: ${problems.length}, e.g. ${problems[0]}`),
      })
      console.log(`[reliability] concurrency ${store} ${label}: ${audit.writes} writes, ${audit.readsAudited} reads audited`)
      expect(audit.writes, 'the writers did not get going').toBeGreaterThanOrEqual(CONCURRENCY.minWrites)
      expect(audit.readsAudited, 'the readers did not get going').toBeGreaterThanOrEqual(CONCURRENCY.minReads)
      expectNone(failed, `of ${audit.writes} writes and ${audit.readsAudited} reads`)
    } finally {
      await dir.remove()
    }
  })
})
