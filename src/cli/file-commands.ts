/** The commands that are one or two requests each: `ls`, `stat`, `mv`, `rm`, `cat`, `sign`. */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web'
import type { EntryInfo, SignOptions } from '../adapters/discovery/index.js'
import type { CliContext } from './context.js'
import { EXIT, type ExitCode, reportOf, usageError } from './errors.js'
import { isRemoteFolder, listAll, remoteEntry } from './remote-entries.js'
import { joinRemote, type RemotePath, remoteName, showRemote } from './remote-path.js'

export async function ls(ctx: CliContext, targets: RemotePath[], options: { long: boolean; recursive: boolean }): Promise<number> {
  const all: EntryInfo[] = []
  for (const target of targets) {
    if (targets.length > 1 && !ctx.out.json) ctx.out.line(`${showRemote(target.store, target.path)}:`)
    const entry = await remoteEntry(ctx, target)
    const entries = entry.type === 'file' ? [entry] : listAll(ctx, target.store, target.path, options.recursive)
    const prefix = entry.type === 'directory' && target.path !== '' ? `${target.path}/` : ''
    for await (const e of entries) {
      // People see pages as they come; a script gets one document at the end.
      if (ctx.out.json) all.push(e)
      else ctx.out.line(listingLine(e, options.long, options.recursive ? e.path.slice(prefix.length) : e.name))
    }
  }
  if (ctx.out.json) ctx.out.result({ entries: all }, () => [])
  return EXIT.ok
}

/** `name`, folders with a trailing slash; long: `-  12345  2024-05-01T10:00:00Z  name` (`d` for folders). */
function listingLine(entry: EntryInfo, long: boolean, name: string): string {
  if (entry.type === 'directory') return long ? `d ${'-'.padStart(14)}  ${''.padEnd(20)}  ${name}/` : `${name}/`
  if (!long) return name
  return `- ${String(entry.size).padStart(14)}  ${entry.modified.replace(/\.\d+Z$/, 'Z').padEnd(20)}  ${name}`
}

export async function statCommand(ctx: CliContext, target: RemotePath): Promise<number> {
  const entry = await remoteEntry(ctx, target)
  ctx.out.result(entry, (e) => Object.entries(e).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`))
  return EXIT.ok
}

export async function mv(ctx: CliContext, from: RemotePath, to: RemotePath, options: { overwrite: boolean }): Promise<number> {
  if (from.path === '') throw usageError('the root of a store cannot be moved')
  const into = to.folder || (await isRemoteFolder(ctx, to))
  const path = into ? joinRemote(to.path, remoteName(from.path)) : to.path
  const entry = await ctx.connection.client.move(from.store, from.path, {
    to: path,
    overwrite: options.overwrite,
    ...(to.store !== from.store ? { toStore: to.store } : {}),
  })
  ctx.out.result(entry, () => [`moved ${showRemote(from.store, from.path)} to ${showRemote(to.store, path)}`])
  return EXIT.ok
}

/** Deletes each target; goes on after a failure, and exits with the first failure's code. */
export async function rmCommand(ctx: CliContext, targets: RemotePath[], options: { recursive: boolean; force: boolean }): Promise<number> {
  const deleted: { store: string; path: string }[] = []
  const failed: { subject: string; error: ReturnType<typeof reportOf> }[] = []
  for (const target of targets) {
    const subject = showRemote(target.store, target.path)
    try {
      if (target.path === '') throw usageError('the root of a store cannot be deleted')
      await ctx.connection.client.delete(target.store, target.path, { recursive: options.recursive })
      deleted.push({ store: target.store, path: target.path })
    } catch (e) {
      const error = reportOf(e)
      if (options.force && error.exitCode === EXIT.notFound) continue
      failed.push({ subject, error })
      ctx.out.error(error, subject)
    }
  }
  ctx.out.result({ deleted, failed }, (r) => r.deleted.map((d) => `deleted ${showRemote(d.store, d.path)}`))
  return failed[0]?.error.exitCode ?? EXIT.ok
}

/** Writes each file to stdout in turn. A reader that goes away (`| head`) ends the command quietly. */
export async function cat(ctx: CliContext, targets: RemotePath[]): Promise<ExitCode> {
  for (const target of targets) {
    const response = await ctx.connection.client.download(target.store, target.path, { signal: ctx.signal })
    try {
      await pipeline(Readable.fromWeb(response.body! as NodeWebReadableStream<Uint8Array>), process.stdout, { end: false })
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPIPE') return EXIT.ok
      throw e
    }
  }
  return EXIT.ok
}

export async function sign(ctx: CliContext, target: RemotePath, options: SignOptions): Promise<number> {
  if (target.path === '') throw usageError('sign needs the path of a file')
  const signed = await ctx.connection.client.sign(target.store, target.path, options)
  ctx.out.result(signed, (s) => [s.url])
  return EXIT.ok
}
