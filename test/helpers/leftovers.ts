/**
 * What a request may leave behind in a service process and its store: open descriptors and files.
 * A test takes a snapshot before the request and waits until the process is back to it.
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { ProcessService } from './process-service.js'
import { waitFor } from './wait.js'

/** Every file under `dir` (the store's own folder included), sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name)).sort()
}

export interface Holdings {
  fds: number
  files: string[]
}

export async function holdings(svc: ProcessService, storageDir: string): Promise<Holdings> {
  return { fds: await svc.openFds(), files: await filesUnder(storageDir) }
}

/** Waits until the process holds no more descriptors than `before` and the store has exactly its files. */
export async function waitUntilReleased(svc: ProcessService, storageDir: string, before: Holdings, timeoutMs = 5000): Promise<void> {
  await waitFor(
    'the request to close its descriptors and remove what it wrote',
    async () => (await svc.openFds()) <= before.fds && JSON.stringify(await filesUnder(storageDir)) === JSON.stringify(before.files),
    { timeoutMs },
  )
}

/** Whether process `pid` holds the file `path` open now, under whatever name it opened it (a hard link of it too), from /proc. */
export async function holdsOpen(pid: number, path: string): Promise<boolean> {
  const { dev, ino } = await stat(path)
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const opened = await stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined)
    if (opened?.isFile() && opened.ino === ino && opened.dev === dev) return true
  }
  return false
}
