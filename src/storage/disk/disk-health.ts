/**
 * Whether the disk store can take writes, for `health()`: a store that answers reads but cannot
 * write (a full disk, an exhausted quota, a file system remounted read-only) must not pass for
 * healthy, or a load balancer keeps sending it uploads that all fail.
 *
 * Two checks, because neither is enough alone: statfs sees a disk that is nearly full before a
 * write fails (an empty probe file still fits on a full disk: it needs an inode, no block), and
 * writing a probe block sees what statfs cannot (a read-only mount, a quota, a device that fails).
 */
import { open, statfs, unlink } from 'node:fs/promises'
import { isErrno } from './layout.js'

/** Below this much free space the store reports it cannot take writes: room for the commits in flight. */
export const MIN_FREE_BYTES = 16 * 1024 * 1024
/** Below this many free inodes likewise (on file systems that count them). */
export const MIN_FREE_INODES = 64

const PROBE = Buffer.alloc(4096, 0x2e)

export interface WriteHealth {
  writable: boolean
  /** Why not, when not. */
  message?: string
}

/**
 * Checks that `dir` can take writes, writing the probe at `probeFile` (removed again). Failures that
 * mean "cannot write here" are answered as `writable: false`; anything else (the folder is gone) is
 * thrown, for the caller to report the store down.
 */
export async function checkWritable(dir: string, probeFile: string): Promise<WriteHealth> {
  const fs = await statfs(dir)
  const free = fs.bavail * fs.bsize
  if (free < MIN_FREE_BYTES) {
    return { writable: false, message: `the disk is full: ${mib(free)} free, below the reserve of ${mib(MIN_FREE_BYTES)}` }
  }
  if (fs.files > 0 && fs.ffree < MIN_FREE_INODES) {
    return { writable: false, message: `the disk has no free inodes left (${fs.ffree})` }
  }
  try {
    const handle = await open(probeFile, 'wx')
    try {
      await handle.write(PROBE)
    } finally {
      await handle.close()
      await unlink(probeFile)
    }
  } catch (e) {
    if (isErrno(e, 'ENOSPC', 'EDQUOT')) return { writable: false, message: 'the disk is full: a write probe failed' }
    if (isErrno(e, 'EROFS')) return { writable: false, message: 'the file system is read-only' }
    if (isErrno(e, 'EIO')) return { writable: false, message: 'the disk fails writes (EIO)' }
    throw e
  }
  return { writable: true }
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
