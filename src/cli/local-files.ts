/** The local side of `put`: the files under a folder. */
import { readdir, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'

export interface LocalFile {
  /** Absolute path. */
  path: string
  /** Below the folder that was walked, with `/` between segments. */
  relative: string
  size: number
}

/**
 * Every regular file under `root`, by path. Symbolic links are left out (as rclone does by default):
 * `skipped` is told of each, so a link to a folder above can never make the walk endless.
 */
export async function filesUnder(root: string, skipped: (path: string) => void): Promise<LocalFile[]> {
  const files: LocalFile[] = []
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    if (entry.isSymbolicLink()) skipped(path)
    if (!entry.isFile()) continue
    const { size } = await stat(path)
    files.push({ path, relative: relative(root, path).split(sep).join('/'), size })
  }
  return files.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0))
}
