/**
 * Concurrency audit (issue 10, finding 1): 32 writers and 32 readers over 8 paths, on one process
 * and on two processes sharing one store; zero mismatches allowed, during the run, after it, and
 * after a restart.
 */
import { afterAll, describe, expect, test } from 'vitest'
import type { ProcessService } from '../helpers/process-service.js'
import { finalStateProblems, runConcurrencyAudit } from './concurrency-audit.js'
import { auditedStores, report, startBuilt, storeEnv, tempDir } from './harness.js'
import { expectNone } from './expect-none.js'

const started: ProcessService[] = []
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')))
})

async function startProcesses(count: number, env: Record<string, string>): Promise<ProcessService[]> {
  const services = await Promise.all(Array.from({ length: count }, () => startBuilt(env)))
  started.push(...services)
  return services
}

describe.each(auditedStores('the concurrency audit'))('concurrency audit on the %s store', (store) => {
  test.each([1, 2])('%i process(es) on one store: every read shows one version written, and so does every path after a restart', async (processes) => {
    const dir = await tempDir(`audit-${store}`)
    try {
      const env = { STORAGE_DIR: dir.path, ...storeEnv(store) }
      const services = await startProcesses(processes, env)
      const apis = services.map((s) => s.api)
      const audit = await runConcurrencyAudit({ apis, store, dir: `audit-${processes}` })
      const after = await finalStateProblems(apis, store, audit.log, audit.paths)

      await Promise.all(services.map((s) => s.stop('SIGTERM')))
      const restarted = await startProcesses(1, env)
      const afterRestart = await finalStateProblems([restarted[0]!.api], store, audit.log, audit.paths)
      const changed = audit.paths.filter((p) => afterRestart.held.get(p) !== after.held.get(p))
      await restarted[0]!.stop('SIGTERM')

      const kinds = {
        'during the run': audit.mismatches,
        'a write': audit.writeProblems,
        'after the run': after.problems,
        'after a restart': afterRestart.problems,
        'changed across the restart': changed,
      }
      const failed = Object.entries(kinds).flatMap(([kind, problems]) => problems.map((p) => `${kind}: ${p}`))
      await report(`concurrency ${store} x${processes}`, {
        readsAudited: audit.readsAudited,
        mismatches: failed.length,
        failed: Object.entries(kinds)
          .filter(([, problems]) => problems.length > 0)
          .map(([kind, problems]) => `${kind}: ${problems.length}, e.g. ${problems[0]}`),
      })
      console.log(`[reliability] concurrency ${store} x${processes}: ${audit.writes} writes, ${audit.readsAudited} reads audited`)
      expect(audit.writes, 'the writers did not get going').toBeGreaterThan(40)
      expect(audit.readsAudited, 'the readers did not get going').toBeGreaterThan(200)
      expectNone(failed, `of ${audit.writes} writes and ${audit.readsAudited} reads`)
    } finally {
      await dir.remove()
    }
  })
})
