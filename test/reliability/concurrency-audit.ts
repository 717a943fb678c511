/**
 * The concurrency audit: writers replace files with new bytes, content types and metadata while
 * readers download, HEAD, info and list them, through one or several service processes (or one
 * process with several workers: the runner only needs API URLs). Every read must show exactly one
 * version that was written; afterwards every path must hold a version that may have been the last.
 */
import { CONCURRENCY } from './knobs.js'
import { listAll, readDownload, readHead, readInfo, seenInInfo } from './reads.js'
import { differences, newVersion, pick, type Version, VersionLog } from './versions.js'

export interface AuditOptions {
  /** `http://host:port/filestorage/v1` of every process taking part; workers are spread over them. */
  apis: string[]
  store: string
  /** Folder of the audited files, e.g. `audit-1`. */
  dir: string
  writers?: number
  readers?: number
  paths?: number
  durationMs?: number
}

export interface AuditResult {
  paths: string[]
  log: VersionLog
  writes: number
  readsAudited: number
  /** Reads that showed no version, or a mix of two. */
  mismatches: string[]
  /** Writes refused or failed, or whose own answer did not describe what was sent. */
  writeProblems: string[]
}

const TIMEOUT_MS = 60_000

async function write(api: string, store: string, log: VersionLog, path: string, label: string): Promise<string | undefined> {
  const large = Math.random() < CONCURRENCY.largeShare
  const size = large
    ? 512 * 1024 + Math.floor(Math.random() * (CONCURRENCY.largeMaxBytes - 512 * 1024))
    : Math.floor(Math.random() * CONCURRENCY.smallMaxBytes)
  const { body, version, metadataJson } = newVersion(path, size, label)
  log.add(version)
  let res: Response
  try {
    res = await fetch(`${api}/${store}/upload/${path}`, {
      method: 'PUT',
      body,
      headers: { 'Content-Type': version.contentType, 'X-File-Metadata': metadataJson },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    })
  } catch (e) {
    return `PUT ${path}: ${(e as Error).message}`
  }
  const text = await res.text()
  if (res.status !== 200 && res.status !== 201) return `PUT ${path}: ${res.status} ${text.slice(0, 200)}`
  version.end = performance.now()
  const problems = differences(seenInInfo(JSON.parse(text)), version, 'the answer to PUT')
  return problems.length ? problems.join('; ') : undefined
}

/** One read of `path` by a random way; returns how many versions it audited and what did not match. */
async function read(api: string, store: string, log: VersionLog, dir: string, path: string): Promise<{ audited: number; problems: string[] }> {
  const way = pick(['download', 'download', 'head', 'info', 'info', 'list'] as const)
  if (way === 'download') {
    const r = await readDownload(api, store, path)
    if (r.status !== 200) return { audited: 1, problems: [`download of ${path}: ${r.status}`] }
    return { audited: 1, problems: [...r.problems, ...differences(r.seen!, log.get(r.seen!.sha256), 'download')] }
  }
  if (way === 'head') {
    const r = await readHead(api, store, path)
    if (r.status !== 200) return { audited: 1, problems: [`HEAD of ${path}: ${r.status}`] }
    return { audited: 1, problems: differences(r.seen!, log.get(r.seen!.sha256), 'HEAD') }
  }
  if (way === 'info') {
    const r = await readInfo(api, store, path)
    if (r.status !== 200) return { audited: 1, problems: [`info of ${path}: ${r.status}`] }
    return { audited: 1, problems: differences(seenInInfo(r.info!), log.get(r.info!.sha256), 'info') }
  }
  const r = await listAll(api, store, dir)
  if (r.status !== 200) return { audited: 1, problems: [`list of ${dir}: ${r.status}`] }
  const problems = r.entries.flatMap((e) => differences(seenInInfo(e), log.get(e.sha256), 'listing entry'))
  return { audited: r.entries.length, problems }
}

export async function runConcurrencyAudit(options: AuditOptions): Promise<AuditResult> {
  const { apis, store, dir } = options
  const writers = options.writers ?? CONCURRENCY.writers
  const readers = options.readers ?? CONCURRENCY.readers
  const paths = Array.from({ length: options.paths ?? CONCURRENCY.paths }, (_, i) => `${dir}/file-${i}.dat`)
  const log = new VersionLog()
  const result: AuditResult = { paths, log, writes: 0, readsAudited: 0, mismatches: [], writeProblems: [] }

  // Every path exists before the readers start, so a 404 is a finding too.
  for (const [i, path] of paths.entries()) {
    const problem = await write(apis[i % apis.length]!, store, log, path, 'seed')
    if (problem) result.writeProblems.push(problem)
  }

  const started = performance.now()
  const duration = options.durationMs ?? CONCURRENCY.durationMs
  const going = () => {
    const elapsed = performance.now() - started
    if (elapsed < duration) return true
    return elapsed < CONCURRENCY.maxStretch * duration && (result.writes < CONCURRENCY.minWrites || result.readsAudited < CONCURRENCY.minReads)
  }
  const worker = async (index: number, job: (api: string) => Promise<void>) => {
    const api = apis[index % apis.length]!
    for (let n = 0; n < CONCURRENCY.maxOpsPerWorker && going(); n++) await job(api)
  }
  await Promise.all([
    ...Array.from({ length: writers }, (_, w) =>
      worker(w, async (api) => {
        result.writes++
        const problem = await write(api, store, log, pick(paths), `writer-${w}`)
        if (problem) result.writeProblems.push(problem)
      }),
    ),
    ...Array.from({ length: readers }, (_, r) =>
      worker(r + 1, async (api) => {
        try {
          const { audited, problems } = await read(api, store, log, dir, pick(paths))
          result.readsAudited += audited
          result.mismatches.push(...problems)
        } catch (e) {
          result.readsAudited++
          result.mismatches.push(`a read failed: ${(e as Error).message}`)
        }
      }),
    ),
  ])
  return result
}

/**
 * Each path as every process sees it now: download and info show the same version, complete, and
 * one that may have been the last written. Returns the problems and the version each path holds.
 */
export async function finalStateProblems(apis: string[], store: string, log: VersionLog, paths: string[]): Promise<{ problems: string[]; held: Map<string, string> }> {
  const problems: string[] = []
  const held = new Map<string, string>()
  for (const path of paths) {
    const candidates = log.finalCandidates(path)
    for (const api of apis) {
      const info = await readInfo(api, store, path)
      const download = await readDownload(api, store, path)
      if (info.status !== 200 || download.status !== 200) {
        problems.push(`${path} on ${api}: info ${info.status}, download ${download.status}`)
        continue
      }
      const version: Version | undefined = log.get(info.info!.sha256)
      const seen = seenInInfo(info.info!)
      problems.push(...download.problems, ...differences(seen, version, 'final info'), ...differences(download.seen!, version, 'final download'))
      if (version && !candidates.includes(version)) {
        problems.push(`${path} on ${api}: holds a version overwritten by a later write (sha256 ${version.sha256.slice(0, 12)}...)`)
      }
      const before = held.get(path)
      if (before !== undefined && before !== seen.sha256) problems.push(`${path}: the processes disagree (${before.slice(0, 12)}... and ${seen.sha256!.slice(0, 12)}...)`)
      held.set(path, seen.sha256!)
    }
  }
  return { problems, held }
}
