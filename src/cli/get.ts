/**
 * `get STORE:PATH... LOCAL`: files, and folders with `-r`, several at a time. Each file is written
 * to `NAME.filestorage-partial` beside its destination and renamed when its sha256 checks out. A run
 * cut short leaves the partial file; the next run asks only for the rest (`Range`, with `If-Range` on
 * the ETag the partial bytes came from, kept in the state folder), and starts over when the file has
 * changed since (the service then answers the whole file).
 *
 * Where things go mirrors `put`: the destination is a folder when written with a trailing slash,
 * when it exists as one, or when there are several sources.
 */
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve, sep } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web'
import type { FileInfo } from '../adapters/discovery/index.js'
import { type CliContext, runBatch } from './context.js'
import { CliError, EXIT, usageError } from './errors.js'
import { formatBytes } from './output.js'
import { type FileProgress, TransferProgress } from './progress.js'
import { listAll, remoteEntry } from './remote-entries.js'
import { type RemotePath, remoteName, showRemote } from './remote-path.js'
import { PartialDownloads } from './transfer-state.js'

export interface GetOptions {
  recursive: boolean
  parallel: number
}

interface GetJob {
  file: FileInfo
  /** Absolute local path. */
  target: string
}

export interface GetResult {
  store: string
  path: string
  target: string
  size: number
  sha256: string
  /** Bytes that were on disk already from an earlier, interrupted run; 0 otherwise. */
  resumedFrom: number
}

export const PARTIAL_SUFFIX = '.filestorage-partial'

export async function get(ctx: CliContext, sources: RemotePath[], destination: string, options: GetOptions): Promise<number> {
  const jobs = await plan(ctx, sources, destination, options.recursive)
  const progress = new TransferProgress(ctx.progress, jobs.reduce((sum, job) => sum + job.file.size, 0), jobs.length)
  const partials = await PartialDownloads.open(ctx.stateDir)
  const started = Date.now()

  const { results, failures, exitCode } = await runBatch(
    ctx,
    progress,
    jobs,
    options.parallel,
    (job) => showRemote(job.file.store, job.file.path),
    (job) => getOne(ctx, job, partials, progress),
  )

  ctx.out.result({ files: results, failed: failures }, () => {
    const bytes = results.reduce((sum, r) => sum + r.size - r.resumedFrom, 0)
    const seconds = (Date.now() - started) / 1000
    const where = jobs.length === 1 ? jobs[0]!.target : resolve(destination)
    return [`downloaded ${results.length} of ${jobs.length} files (${formatBytes(bytes)} received in ${seconds.toFixed(1)} s) to ${where}`]
  })
  return exitCode
}

async function getOne(ctx: CliContext, job: GetJob, partials: PartialDownloads, progress: TransferProgress): Promise<GetResult> {
  const { file, target } = job
  const partial = `${target}${PARTIAL_SUFFIX}`
  await mkdir(dirname(target), { recursive: true })
  // Bytes on disk count only when they are known to come from the version about to be fetched.
  let have = await sizeOf(partial)
  if (have > file.size || (have > 0 && (await partials.etagOf(partial)) !== file.etag)) have = 0

  const bar = progress.file(file.path, file.size, have)
  let resumedFrom = have
  try {
    let sha256 = file.sha256
    if (have < file.size || file.size === 0) {
      const response = await ctx.connection.client.download(file.store, file.path, {
        signal: ctx.signal,
        ...(have > 0 ? { range: `bytes=${have}-`, ifRange: file.etag } : {}),
      })
      // 200 after a Range: the file changed since the partial bytes came (If-Range), here is all of it.
      if (response.status === 200) have = resumedFrom = 0
      else if (!response.headers.get('content-range')?.startsWith(`bytes ${have}-`)) {
        await response.body?.cancel()
        throw new CliError(EXIT.failure, 'unexpected_answer', `asked for the bytes from ${have}, got ${response.headers.get('content-range')}`)
      }
      sha256 = response.headers.get('x-content-sha256') ?? sha256
      await partials.remember(partial, response.headers.get('etag') ?? file.etag)
      const size = have + Number(response.headers.get('content-length'))
      bar.set(have)
      await receive(response.body!, partial, have, bar)
      have = size
    }
    const actual = await sha256Of(partial)
    if (actual !== sha256) {
      await rm(partial, { force: true })
      await partials.forget(partial)
      throw new CliError(EXIT.integrity, 'checksum_mismatch', `the bytes received have sha256 ${actual}, the file has ${sha256}`)
    }
    await rename(partial, target)
    await partials.forget(partial)
    return { store: file.store, path: file.path, target, size: have, sha256, resumedFrom }
  } finally {
    bar.done()
  }
}

/** Writes `body` into `partial` from byte `offset` on (truncating it at 0). */
async function receive(body: ReadableStream<Uint8Array>, partial: string, offset: number, bar: FileProgress): Promise<void> {
  let written = offset
  const count = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      written += chunk.length
      bar.set(written)
      done(null, chunk)
    },
  })
  const out = createWriteStream(partial, offset > 0 ? { flags: 'r+', start: offset } : { flags: 'w' })
  await pipeline(Readable.fromWeb(body as NodeWebReadableStream<Uint8Array>), count, out)
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size
  } catch {
    return 0
  }
}

/** The files to fetch and where each goes. */
async function plan(ctx: CliContext, sources: RemotePath[], destination: string, recursive: boolean): Promise<GetJob[]> {
  const root = resolve(destination)
  const into = /[/\\]$/.test(destination) || sources.length > 1 || (await isLocalFolder(root))
  const jobs: GetJob[] = []
  for (const source of sources) {
    const entry = await remoteEntry(ctx, source)
    if (entry.type === 'file') {
      jobs.push({ file: entry, target: into ? join(root, entry.name) : root })
      continue
    }
    if (!recursive) throw usageError(`"${showRemote(source.store, source.path)}" is a folder: use -r to fetch folders`)
    const base = into ? join(root, source.path === '' ? source.store : remoteName(source.path)) : root
    const prefix = source.path === '' ? '' : `${source.path}/`
    for await (const file of listAll(ctx, source.store, source.path, true)) {
      if (file.type !== 'file') continue
      jobs.push({ file, target: inside(base, file.path.slice(prefix.length)) })
    }
  }
  return jobs
}

/** `base/relative`, refusing anything that would land outside `base` (the service never sends such names; this makes sure). */
function inside(base: string, relative: string): string {
  const target = resolve(base, relative)
  if (!target.startsWith(base + sep)) throw new CliError(EXIT.failure, 'unexpected_answer', `the service listed a path outside the folder: "${relative}"`)
  return target
}

async function isLocalFolder(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}
