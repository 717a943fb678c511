/**
 * What the reliability suites share: the built service in child processes (black box: only its
 * HTTP API, its process and its STORAGE_DIR are looked at), the stores they run on, the figures
 * they report, and a look at what a store directory holds.
 */
import { existsSync } from 'node:fs'
import { appendFile, lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MongoClient } from 'mongodb'
import { requireService } from '../helpers/external.js'
import { randomDbName } from '../helpers/mongo.js'
import { BUILT_MAIN, type ProcessService, type Runtime, spawnService } from '../helpers/process-service.js'
import { s3StoreEnv, s3TestTarget } from '../helpers/s3-store.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * The stores the audits run on: `disk` always, `mongo` when a MongoDB-wire server is there (FerretDB
 * under npm run test:reliability), `s3` when an S3 server is (SeaweedFS).
 */
export function auditedStores(what: string): string[] {
  const mongo = requireService('MONGODB_URI', `${what} on the mongo store`) ? ['mongo'] : []
  return ['disk', ...mongo, ...(s3TestTarget() ? ['s3'] : [])]
}

/** One run of an audit: a store, on a runtime; `name` says both (`disk`, `mongo`, `disk on Bun`). */
export interface AuditRun {
  store: string
  runtime: Runtime
  name: string
}

/**
 * The runs of an audit: every audited store on Node, and the disk store on Bun. What the runtime
 * does (request bodies, timeouts, the processes) is the same whatever the store behind it.
 */
export function auditedRuns(what: string): AuditRun[] {
  return [
    ...auditedStores(what).map((store): AuditRun => ({ store, runtime: 'node', name: store })),
    { store: 'disk', runtime: 'bun', name: 'disk on Bun' },
  ]
}

/** Environment serving `store` (the disk store is always served; `mongo` adds a database of its own, `s3` a key prefix of its own). */
export function storeEnv(store: string, database = randomDbName('rel')): Record<string, string> {
  if (store === 's3') return s3StoreEnv()
  return store === 'mongo' ? { MONGODB_URI: process.env.MONGODB_URI!, MONGODB_DB: database } : {}
}

/** Drops the database a `storeEnv` named, when it named one (the mongo store's; the disk store's folder is the test's own). */
export async function dropStoreDatabase(env: Record<string, string>): Promise<void> {
  if (!env.MONGODB_URI || !env.MONGODB_DB) return
  const client = new MongoClient(env.MONGODB_URI)
  await client.db(env.MONGODB_DB).dropDatabase().finally(() => client.close())
}

/**
 * Starts the built service (`npm run build` first; `npm run test:reliability` does): the node
 * adapter on Node, or with `runtime: 'bun'` the bun adapter on Bun, as `npm run start:bun` runs it;
 * `runtimeArgs` go to the runtime itself.
 */
export async function startBuilt(
  env: Record<string, string>,
  options: { startTimeoutMs?: number; runtimeArgs?: string[]; runtime?: Runtime } = {},
): Promise<ProcessService> {
  if (!existsSync(join(ROOT, BUILT_MAIN))) throw new Error(`${BUILT_MAIN} is missing: run "npm run build" first`)
  return spawnService({ SHUTDOWN_TIMEOUT_SECONDS: '5', ...env }, { startTimeoutMs: 30_000, ...options, built: true })
}

export async function tempDir(label: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `filestorage-rel-${label}-`))
  return { path, remove: () => rm(path, { recursive: true, force: true }) }
}

/** One suite's figures, for the summary table printed at the end of the run. */
export interface Figures {
  readsAudited?: number
  mismatches?: number
  crashesSurvived?: number
  leftoversFound?: number
  leftoverBytes?: number
  peakRssMiB?: number
  notCut?: number
  /** Checks that failed, briefly. */
  failed?: string[]
}

/** A process's peak resident memory (VmHWM, kept by the kernel), in bytes; 0 once it is gone. */
async function processPeak(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024
}

/**
 * The highest resident memory of any one process of the services an audit runs (a WORKERS service's
 * workers included), in MiB: each process's own peak, read every 250 ms and at `stop()`, so nothing
 * is missed but the last quarter second of a process killed with SIGKILL.
 */
export function trackPeakRss(services: () => ProcessService[]): { stop(): Promise<number> } {
  let peak = 0
  const sample = async () => {
    for (const svc of services()) {
      const children = await readFile(`/proc/${svc.pid}/task/${svc.pid}/children`, 'utf8').catch(() => '')
      for (const pid of [svc.pid, ...children.trim().split(/\s+/).filter(Boolean).map(Number)]) peak = Math.max(peak, await processPeak(pid))
    }
  }
  const timer = setInterval(() => void sample(), 250)
  return {
    async stop() {
      clearInterval(timer)
      await sample()
      return Math.round(peak / (1024 * 1024))
    },
  }
}

/** Prints `figures` and keeps them for the summary (the file the global setup names). */
export async function report(suite: string, figures: Figures): Promise<void> {
  const shown = Object.entries(figures)
    .filter(([k]) => k !== 'failed')
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ')
  console.log(`[reliability] ${suite}: ${shown}${figures.failed?.length ? `\n  failed: ${figures.failed.join('\n  failed: ')}` : ''}`)
  const file = process.env.RELIABILITY_FIGURES
  if (file) await appendFile(file, `${JSON.stringify({ suite, ...figures })}\n`)
}

export interface TreeEntry {
  path: string
  type: 'file' | 'dir' | 'other'
  size: number
  ino: number
}

/** Regular files and folders under `dir` (recursively, not following links), with their sizes and inodes. */
export async function treeEntries(dir: string): Promise<TreeEntry[]> {
  const out: TreeEntry[] = []
  const walk = async (d: string, rel: string) => {
    let names: string[]
    try {
      names = await readdir(d)
    } catch {
      return // removed while walked
    }
    for (const name of names) {
      const path = join(d, name)
      const st = await lstat(path).catch(() => undefined)
      if (!st) continue
      const relPath = rel ? `${rel}/${name}` : name
      if (st.isDirectory()) {
        out.push({ path: relPath, type: 'dir', size: 0, ino: st.ino })
        await walk(path, relPath)
      } else out.push({ path: relPath, type: st.isFile() ? 'file' : 'other', size: st.size, ino: st.ino })
    }
  }
  await walk(dir, '')
  return out
}

/**
 * What the store keeps beside the files (STORAGE_DIR/.filestorage), counted without knowing its
 * layout: once every upload is finished and a sweep ran, only small per-file records may stay,
 * and further names (hard links) of the stored files themselves, which take no space of their own.
 * A "leftover" is a file there, not a stored file's inode, larger than any record can be
 * (metadata is at most 16 KiB).
 */
export const RECORD_MAX_BYTES = 32 * 1024

export async function internalUsage(storageDir: string): Promise<{ files: number; bytes: number; large: string[] }> {
  const all = await treeEntries(storageDir)
  const stored = new Set(all.filter((e) => e.type === 'file' && !e.path.startsWith('.filestorage/')).map((e) => e.ino))
  const entries = all.filter((e) => e.type === 'file' && e.path.startsWith('.filestorage/') && !stored.has(e.ino))
  return {
    files: entries.length,
    bytes: entries.reduce((sum, e) => sum + e.size, 0),
    large: entries.filter((e) => e.size > RECORD_MAX_BYTES).map((e) => `${e.path} (${e.size} bytes)`),
  }
}

/**
 * The process's open descriptors (from /proc), less its TCP connections to `ignorePorts` (a
 * database driver's pool grows under load and keeps its idle connections: that is no leak).
 */
export async function openDescriptors(pid: number, ignorePorts: number[] = []): Promise<number> {
  const links = await Promise.all((await readdir(`/proc/${pid}/fd`)).map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')))
  if (ignorePorts.length === 0) return links.length
  const ignored = new Set<string>()
  for (const table of ['tcp', 'tcp6']) {
    const lines = (await readFile(`/proc/${pid}/net/${table}`, 'utf8').catch(() => '')).split('\n').slice(1)
    for (const line of lines) {
      const cols = line.trim().split(/\s+/)
      const remotePort = parseInt(cols[2]?.split(':')[1] ?? '', 16)
      if (ignorePorts.includes(remotePort)) ignored.add(`socket:[${cols[9]}]`)
    }
  }
  return links.filter((l) => !ignored.has(l)).length
}

/** What is in flight between a client and a server on loopback at most: both socket buffers, plus a server's read-ahead. */
export async function inFlightAllowance(): Promise<number> {
  const max = async (file: string) => Number((await readFile(file, 'utf8')).trim().split(/\s+/)[2])
  return (await max('/proc/sys/net/ipv4/tcp_wmem')) + (await max('/proc/sys/net/ipv4/tcp_rmem')) + 2 * 1024 * 1024
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
