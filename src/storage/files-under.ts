/** Walking a folder: every file under it, from a recursive listing read a page at a time. */
import type { FileOperations, StoredFile } from './types.js'

export async function* filesUnder(store: Pick<FileOperations, 'list'>, dir: string): AsyncGenerator<StoredFile> {
  for (let cursor: string | undefined; ; ) {
    const page = await store.list(dir, { recursive: true, limit: 1000, ...(cursor ? { cursor } : {}) })
    for (const entry of page.entries) if (entry.type === 'file') yield entry
    if (!page.nextCursor) return
    cursor = page.nextCursor
  }
}
