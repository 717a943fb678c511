/** Questions about the remote side that several commands ask: what is at a path, what is in a folder. */
import { type EntryInfo, FileStorageError } from '../adapters/discovery/index.js'
import type { CliContext } from './context.js'

/** The file or folder at a path (`info` answers a folder entry too, which its type leaves out). */
export async function remoteEntry(ctx: CliContext, remote: { store: string; path: string }): Promise<EntryInfo> {
  if (remote.path === '') return { type: 'directory', store: remote.store, path: '', name: '' }
  return (await ctx.connection.client.info(remote.store, remote.path)) as EntryInfo
}

export async function isRemoteFolder(ctx: CliContext, remote: { store: string; path: string }): Promise<boolean> {
  try {
    return (await remoteEntry(ctx, remote)).type === 'directory'
  } catch (e) {
    if (e instanceof FileStorageError && e.code === 'not_found') return false
    throw e
  }
}

/** Every entry of a folder, page after page (with `recursive`: every file below it, by path). */
export async function* listAll(ctx: CliContext, store: string, dir: string, recursive: boolean): AsyncGenerator<EntryInfo> {
  let cursor: string | undefined
  do {
    const page = await ctx.connection.client.list(store, dir, { recursive, ...(cursor ? { cursor } : {}) })
    yield* page.entries
    cursor = page.nextCursor ?? undefined
  } while (cursor)
}
