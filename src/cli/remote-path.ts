/**
 * Remote paths as rclone and scp write them: `STORE:PATH` (`disk:reports/a.pdf`, `disk:` for the
 * root). Anything else is a local path; a local name with a colon is written `./a:b`.
 */
import { usageError } from './errors.js'

export interface RemotePath {
  store: string
  /** Inside the store, without leading or trailing slashes; empty for the root. */
  path: string
  /** Written as a folder: with a trailing slash, or the root. */
  folder: boolean
}

/** A store name before the first colon: no slash, no dot first (so `./a:b` stays local). */
const REMOTE = /^([A-Za-z0-9_-][A-Za-z0-9._-]*):(.*)$/s

export function parseRemote(arg: string): RemotePath | undefined {
  const m = REMOTE.exec(arg)
  if (!m) return undefined
  const path = m[2]!.replace(/^\/+/, '')
  const trimmed = path.replace(/\/+$/, '')
  return { store: m[1]!, path: trimmed, folder: trimmed === '' || trimmed !== path }
}

export function requireRemote(arg: string): RemotePath {
  const remote = parseRemote(arg)
  if (!remote) throw usageError(`"${arg}" is not a remote path: write STORE:PATH, e.g. disk:reports/a.pdf`)
  return remote
}

/** `disk:reports/a.pdf` */
export const showRemote = (store: string, path: string) => `${store}:${path}`

/** Joins remote path segments, skipping empty ones. */
export const joinRemote = (...parts: string[]) => parts.filter((p) => p !== '').join('/')

/** The last segment of a remote path. */
export const remoteName = (path: string) => path.slice(path.lastIndexOf('/') + 1)
