/**
 * `npm run bench`: our service against its peers, side by side, on loopback, in one run.
 * Prints a Markdown table and writes bench/results/<timestamp>.json and bench/results/latest.json.
 * Settings: see lib/settings.ts (BENCH_RUNS, BENCH_QUICK, BENCH_DIR, BENCH_ONLY).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { scenarioContext, type BenchContext } from './lib/context.js'
import { fileSystem, loadAverage, machineInfo } from './lib/machine.js'
import { onInterrupt } from './lib/processes.js'
import { idleMemory } from './scenarios/idle-memory.js'
import type { Row } from './lib/results.js'
import { buildService, PROJECT_DIR } from './lib/service.js'
import { readSettings, sizeLabel } from './lib/settings.js'
import { markdownTable } from './lib/table.js'
import { diskThroughput } from './scenarios/disk-throughput.js'
import { events } from './scenarios/events.js'
import { mongo } from './scenarios/mongo.js'
import { observability } from './scenarios/observability.js'
import { s3 } from './scenarios/s3.js'
import { smallFiles } from './scenarios/small-files.js'
import { tus } from './scenarios/tus.js'

interface Scenario {
  key: string
  section: string
  run(ctx: BenchContext): Promise<Row[]>
}

const SCENARIOS: Scenario[] = [
  { key: 'disk', section: '1. disk throughput', run: diskThroughput },
  { key: 'small', section: '2. small files', run: smallFiles },
  { key: 'tus', section: '3. resumable upload (tus)', run: tus },
  { key: 'mongo', section: '4. MongoDB', run: mongo },
  { key: 'memory', section: '5. memory', run: idleMemory },
  { key: 's3', section: '6. S3 (SeaweedFS)', run: s3 },
  { key: 'events', section: '7. events', run: events },
  { key: 'obs', section: '8. observability', run: observability },
]

async function main(): Promise<void> {
  const settings = readSettings()
  const startedAt = new Date()
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
  const runDir = join(settings.dir, `run-${stamp}`)
  console.error(
    `[bench] ${settings.quick ? 'QUICK smoke run, ' : ''}${settings.runs} run(s) per figure, ` +
      `large ${sizeLabel(settings.largeBytes)}, load ${settings.loadSeconds} s; working in ${runDir}`,
  )
  buildService()
  if (process.env.BENCH_KEEP !== '1') onInterrupt(() => rmSync(runDir, { recursive: true, force: true }))
  const loadBefore = loadAverage()
  const rows: Row[] = []
  for (const scenario of SCENARIOS) {
    if (settings.only && !settings.only.has(scenario.key)) continue
    const started = performance.now()
    try {
      rows.push(...(await scenario.run(scenarioContext(settings, runDir, scenario.key))))
    } catch (e) {
      console.error(`[bench ${scenario.key}] failed:`, e)
      rows.push({ section: scenario.section, name: scenario.key, unit: 'MB/s', notAvailable: `failed: ${(e as Error).message.split('\n')[0]}` })
    }
    console.error(`[bench ${scenario.key}] ${((performance.now() - started) / 1000).toFixed(0)} s`)
  }
  const finishedAt = new Date()
  const loadAfter = loadAverage()

  const table = markdownTable(rows)
  const machine = machineInfo()
  const files = fileSystem(settings.dir)
  const header =
    `Measured ${startedAt.toISOString()} on this machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryMiB} MiB, ` +
    `Linux ${machine.kernel}, Node ${machine.node}, ${machine.nginx}, wrk ${machine.wrk.split(' ')[1]}, curl ${machine.curl.split(' ')[1]}, ` +
    `SeaweedFS ${machine.seaweedfs}; loopback only; files on ${files}. ` +
    `Load average before: ${loadBefore}; after: ${loadAfter}. Medians of ${settings.runs} run(s).`
  console.log(`\n${header}\n\n${table}\n`)

  const resultsDir = join(PROJECT_DIR, 'bench', 'results')
  mkdirSync(resultsDir, { recursive: true })
  const json = JSON.stringify(
    { startedAt, finishedAt, loadBefore, loadAfter, machine, fileSystem: files, settings: { ...settings, only: settings.only && [...settings.only] }, rows },
    null,
    2,
  )
  writeFileSync(join(resultsDir, `${stamp}.json`), json)
  writeFileSync(join(resultsDir, 'latest.json'), json)
  writeFileSync(join(resultsDir, 'latest.md'), `${header}\n\n${table}\n`)
  console.error(`[bench] results: bench/results/${stamp}.json (and latest.json, latest.md)`)
  if (process.env.BENCH_KEEP !== '1') rmSync(runDir, { recursive: true, force: true })
}

main().catch((e: unknown) => {
  console.error('[bench] failed:', e)
  process.exit(1)
})
