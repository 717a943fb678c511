/**
 * `npm run bench:profile -- <workload>`: runs one benchmark workload against our service started
 * with `node --cpu-prof`, then prints where its CPU time went (self time per function and origin).
 * With `--threads` it takes no profile and prints instead the user and system time of each of the
 * service's threads over the workload (per request, for the wrk workloads): how much is the event
 * loop's, and how much libuv's pool threads and V8's helpers do beside it. With `--bun`, the same of
 * the bun adapter on Bun (`bun --cpu-prof`; its threads by their own names).
 * Workloads: download, upload (the large transfer), small-get, small-put (wrk, 32 connections),
 * tus (when our service has the endpoint), gridfs-get, gridfs-put (the `mongo` store, on MONGODB_URI or
 * the FerretDB the benchmark starts). The .cpuprofile and the summary stay in
 * bench/results/profiles/<timestamp>-<workload>/ (open the profile in Chrome DevTools for more).
 * BENCH_SERVICE_ENV=LOG_REQUESTS=true,METRICS_PORT=9464 starts the service with those variables
 * (what observing it costs: docs/benchmarks.md, section 6).
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { formatSummary, summarizeProfile } from './lib/cpuprofile.js'
import { download, upload } from './lib/curl.js'
import { buildService, PROJECT_DIR, startService, type RunningService } from './lib/service.js'
import { readSettings } from './lib/settings.js'
import { ensureRandomFile } from './lib/files.js'
import { mongodbServer } from './lib/mongodb-server.js'
import { onInterrupt } from './lib/processes.js'
import { speaksTus, tusUpload } from './lib/tus-client.js'
import { load, type LoadResult } from './lib/wrk.js'
import { threadCpuMs } from './lib/cpu.js'

/**
 * `setup` runs first against an unprofiled service on the same store, so that the profile holds
 * the workload alone; `run` runs against the profiled one.
 */
interface Workload {
  /** Needs a MongoDB-wire server: the service then has its `mongo` store. */
  mongo?: boolean
  setup?: (service: RunningService, work: string) => Promise<unknown>
  /** Answers what wrk answers, for the workloads of many small requests. */
  run: (service: RunningService, work: string) => Promise<unknown>
}

const settings = readSettings()

/** BENCH_SERVICE_ENV: `NAME=value` pairs, comma-separated, for the profiled service. */
function serviceEnv(): Record<string, string> {
  const pairs = (process.env.BENCH_SERVICE_ENV ?? '').split(',').filter(Boolean)
  return Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]))
}
const source = (bytes: number) => {
  const dir = join(settings.dir, 'sources')
  mkdirSync(dir, { recursive: true })
  return ensureRandomFile(join(dir, `random-${bytes}.bin`), bytes)
}
const repeat = async (times: number, fn: () => Promise<unknown>) => {
  for (let i = 0; i < times; i++) await fn()
}
const small = (work: string) => {
  const file = join(work, 'small.bin')
  writeFileSync(file, Buffer.alloc(settings.smallBytes, 0x61))
  return file
}
const wrk = { connections: settings.connections, threads: settings.wrkThreads, seconds: settings.loadSeconds }
const putLoad = (s: RunningService) =>
  load({
    ...wrk,
    method: 'PUT',
    url: `${new URL(s.api).origin}/`,
    token: s.token,
    pathPrefix: '/filestorage/v1/disk/upload/small/put/',
    names: 1024,
    bodyBytes: settings.smallBytes,
  })

const WORKLOADS: Record<string, Workload> = {
  download: {
    setup: (s) => upload(`${s.api}/disk/upload/bench/large.bin`, source(settings.largeBytes), undefined, s.token),
    run: (s) => repeat(3, () => download(`${s.api}/disk/download/bench/large.bin`, undefined, s.token)),
  },
  upload: {
    run: (s) => repeat(3, () => upload(`${s.api}/disk/upload/bench/upload.bin`, source(settings.largeBytes), undefined, s.token)),
  },
  'small-get': {
    setup: (s, work) => upload(`${s.api}/disk/upload/small/get.bin`, small(work), undefined, s.token),
    run: (s) => load({ ...wrk, method: 'GET', url: `${s.api}/disk/download/small/get.bin`, token: s.token }),
  },
  'small-put': {
    // The same names as the profiled run, so that it replaces files as the benchmark does.
    setup: (s) => putLoad(s),
    run: (s) => putLoad(s),
  },
  'gridfs-get': {
    mongo: true,
    setup: (s) => upload(`${s.api}/mongo/upload/bench/gridfs.bin`, source(settings.gridfsBytes), 600, s.token),
    run: (s) => repeat(3, () => download(`${s.api}/mongo/download/bench/gridfs.bin`, 600, s.token)),
  },
  'gridfs-put': {
    mongo: true,
    run: (s) => repeat(2, () => upload(`${s.api}/mongo/upload/bench/gridfs.bin`, source(settings.gridfsBytes), 600, s.token)),
  },
  tus: {
    run: async (s) => {
      const endpoint = `${s.api}/disk/tus/`
      if (!(await speaksTus(endpoint)).ok) throw new Error('our service has no tus endpoint yet')
      const file = source(settings.tusBytes)
      const metadata = { path: 'bench/profile-tus.bin', filename: 'profile-tus.bin' }
      await repeat(2, () => tusUpload({ endpoint, file, chunkBytes: settings.tusChunkBytes, metadata, token: s.token }))
    },
  },
}

/** `run` with the service's CPU per thread over it: printed, and kept in `out`. */
async function runByThread(workload: Workload, service: RunningService, work: string, out: string, name: string): Promise<void> {
  const before = threadCpuMs(service.pids)
  const started = performance.now()
  const result = await workload.run(service, work)
  const seconds = (performance.now() - started) / 1000
  const after = threadCpuMs(service.pids)
  const requests = (result as Partial<LoadResult> | undefined)?.requests
  const unit = requests ? `µs per request (${requests} requests in ${seconds.toFixed(1)} s)` : `ms in ${seconds.toFixed(1)} s`
  const lines = [`workload ${name}: CPU by thread, ${unit}`]
  const total = { user: 0, system: 0 }
  const per = (ms: number) => (requests ? ((ms * 1000) / requests).toFixed(0) : ms.toFixed(0)).padStart(7)
  for (const [thread, end] of after) {
    const start = before.get(thread) ?? { userMs: 0, systemMs: 0 }
    const user = end.userMs - start.userMs
    const system = end.systemMs - start.systemMs
    total.user += user
    total.system += system
    if (user + system > 0) lines.push(`  ${thread.padEnd(20)} user ${per(user)}  system ${per(system)}`)
  }
  lines.push(`  ${'all threads'.padEnd(20)} user ${per(total.user)}  system ${per(total.system)}`)
  const text = `${lines.join('\n')}\n`
  writeFileSync(join(out, 'threads.txt'), text)
  console.log(text)
}

async function main(): Promise<void> {
  const name = process.argv[2] ?? ''
  const byThread = process.argv.includes('--threads')
  const runtime = process.argv.includes('--bun') ? 'bun' : 'node'

  const workload = WORKLOADS[name]
  if (!workload) {
    console.error(`usage: npm run bench:profile -- <${Object.keys(WORKLOADS).join('|')}> [--threads] [--bun]`)
    process.exit(2)
  }
  buildService()
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const out = join(PROJECT_DIR, 'bench', 'results', 'profiles', `${stamp}-${name}${runtime === 'bun' ? '-bun' : ''}`)
  const work = join(settings.dir, `profile-${stamp}`)
  mkdirSync(out, { recursive: true })
  mkdirSync(work, { recursive: true })
  // The store holds gigabytes after the large workloads: gone at the end, also after a failure.
  if (process.env.BENCH_KEEP !== '1') onInterrupt(() => rmSync(work, { recursive: true, force: true }))
  const storageDir = join(work, 'store')
  const mongo = workload.mongo ? mongodbServer(join(work, 'services')) : undefined
  if (mongo && mongo.uri === undefined) throw new Error(mongo.reason)
  const stores = { storageDir, ...(mongo ? { mongodbUri: mongo.uri, mongodbDb: `filestorage_profile_${Date.now()}` } : {}) }
  // With --threads, nothing is profiled: setup runs on the measured service itself, warming it up.
  if (workload.setup && !byThread) {
    const unprofiled = await startService({ ...stores, runtime, logFile: join(out, 'setup.log') })
    try {
      await workload.setup(unprofiled, work)
    } finally {
      await unprofiled.stop()
    }
  }
  const service = await startService({
    ...stores,
    runtime,
    env: serviceEnv(),
    logFile: join(out, 'service.log'),
    runtimeArgs: byThread ? [] : ['--cpu-prof', `--cpu-prof-dir=${out}`],
  })
  try {
    if (byThread) {
      await workload.setup?.(service, work) // warmed up: the figures are of a service in its stride
      await runByThread(workload, service, work, out, name)
    } else {
      await workload.run(service, work)
    }
  } finally {
    await service.stop() // the profile is written as the process exits
    if (mongo?.uri !== undefined) mongo.stop()
  }
  if (process.env.BENCH_KEEP !== '1') rmSync(work, { recursive: true, force: true })
  if (byThread) return
  const profile = readdirSync(out).find((f) => f.endsWith('.cpuprofile'))
  if (!profile) throw new Error(`no .cpuprofile in ${out}`)
  const text = `workload ${name}\n${formatSummary(summarizeProfile(join(out, profile)))}\n`
  writeFileSync(join(out, 'summary.txt'), text)
  console.log(text)
  console.error(`[bench:profile] ${join(out, profile)}`)
}

main().catch((e: unknown) => {
  console.error('[bench:profile] failed:', e)
  process.exit(1)
})
