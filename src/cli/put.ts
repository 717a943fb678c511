/**
 * `put LOCAL... STORE:PATH`: files, and folders with `-r`, several at a time. A file up to one chunk
 * goes in one streamed `PUT` (its sha256, computed while reading, must be what the service stored);
 * a larger one through tus, so that an interrupted run goes on where it stopped when run again.
 *
 * Where things go (as `cp` and `scp` do): the target is a folder when it is written with a trailing
 * slash, is the root, already exists as a folder, or there are several sources; a source then keeps
 * its name inside it. Otherwise the target names the copy itself (a file, or the folder a source
 * folder's contents go into).
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import { Readable } from 'node:stream'
import type { FileInfo } from '../adapters/discovery/index.js'
import { type CliContext, runBatch } from './context.js'
import { CliError, EXIT, usageError } from './errors.js'
import { filesUnder } from './local-files.js'
import { formatBytes } from './output.js'
import { TransferProgress, type FileProgress } from './progress.js'
import { isRemoteFolder } from './remote-entries.js'
import { joinRemote, type RemotePath, showRemote } from './remote-path.js'
import { uploadStorage } from './transfer-state.js'
import { tusPut } from './tus-put.js'

export interface PutOptions {
  recursive: boolean
  /** Refuse to replace existing files. */
  noClobber: boolean
  parallel: number
  /** tus chunk size; larger files go through tus. */
  chunkSize: number
  contentType?: string
}

interface PutJob {
  source: string
  size: number
  store: string
  path: string
}

export interface PutResult extends FileInfo {
  source: string
  /** `put` (one request) or `tus` (resumable). */
  via: 'put' | 'tus'
  /** Bytes the service had already (an upload resumed from an earlier run); 0 otherwise. */
  resumedFrom: number
}

export async function put(ctx: CliContext, sources: string[], target: RemotePath, options: PutOptions): Promise<number> {
  const jobs = await plan(ctx, sources, target, options.recursive)
  const total = jobs.reduce((sum, job) => sum + job.size, 0)
  const progress = new TransferProgress(ctx.progress, total, jobs.length)
  const urlStorage = await uploadStorage(ctx.stateDir)
  const started = Date.now()

  const { results, failures, exitCode } = await runBatch(
    ctx,
    progress,
    jobs,
    options.parallel,
    (job) => job.source,
    async (job): Promise<PutResult> => {
      const bar = progress.file(job.path, job.size)
      try {
        if (job.size <= options.chunkSize) {
          return { ...(await putWhole(ctx, job, options, bar)), source: job.source, via: 'put', resumedFrom: 0 }
        }
        const { resumedFrom } = await tusPut(ctx, job, { ...options, createOnly: options.noClobber, urlStorage }, bar)
        return { ...(await ctx.connection.client.info(job.store, job.path)), source: job.source, via: 'tus', resumedFrom }
      } finally {
        bar.done()
      }
    },
  )

  ctx.out.result({ files: results, failed: failures }, () => {
    const bytes = results.reduce((sum, r) => sum + r.size - r.resumedFrom, 0)
    const seconds = (Date.now() - started) / 1000
    const where = jobs.length === 1 ? showRemote(jobs[0]!.store, jobs[0]!.path) : showRemote(target.store, target.path)
    return [`uploaded ${results.length} of ${jobs.length} files (${formatBytes(bytes)} sent in ${seconds.toFixed(1)} s) to ${where}`]
  })
  return exitCode
}

/** One streamed PUT, its sha256 computed on the way and compared with what the service stored. */
async function putWhole(ctx: CliContext, job: PutJob, options: PutOptions, bar: FileProgress): Promise<FileInfo> {
  const hash = createHash('sha256')
  let sent = 0
  const body = (Readable.toWeb(createReadStream(job.source)) as ReadableStream<Uint8Array>).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk)
        sent += chunk.length
        bar.set(sent)
        controller.enqueue(chunk)
      },
    }),
  )
  const { file } = await ctx.connection.client.upload(job.store, job.path, body, {
    createOnly: options.noClobber,
    signal: ctx.signal,
    ...(options.contentType ? { contentType: options.contentType } : {}),
  })
  const sha256 = hash.digest('hex')
  if (file.sha256 !== sha256) {
    throw new CliError(EXIT.integrity, 'checksum_mismatch', `the service stored sha256 ${file.sha256}, the file read had ${sha256}`)
  }
  return file
}

/** The files to send and where each goes. */
async function plan(ctx: CliContext, sources: string[], target: RemotePath, recursive: boolean): Promise<PutJob[]> {
  const into = target.folder || sources.length > 1 || (await isRemoteFolder(ctx, target))
  const jobs: PutJob[] = []
  for (const source of sources) {
    const path = resolve(source)
    const stats = await stat(path)
    if (stats.isDirectory()) {
      if (!recursive) throw usageError(`"${source}" is a folder: use -r to send folders`)
      const base = into ? joinRemote(target.path, basename(path)) : target.path
      const skipped = (link: string) => ctx.out.warn('a symbolic link, not sent', link)
      for (const file of await filesUnder(path, skipped)) {
        jobs.push({ source: file.path, size: file.size, store: target.store, path: joinRemote(base, file.relative) })
      }
    } else if (stats.isFile()) {
      jobs.push({ source: path, size: stats.size, store: target.store, path: into ? joinRemote(target.path, basename(path)) : target.path })
    } else {
      throw new CliError(EXIT.invalid, 'local_not_a_file', `"${source}" is neither a file nor a folder`)
    }
  }
  return jobs
}
