/**
 * A small tmpfs mounted by a test, as a disk that really fills up (ENOSPC from the kernel, statfs
 * telling the truth). Mounting needs root (CI runs as root): where it is not allowed the suite is
 * skipped with a message, and under CI=true that fails the run instead.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Tmpfs {
  dir: string
  /** Fills the file system to its last byte with a file of its own (the remainder of a page included). */
  fill(): Promise<void>
  /** Removes what `fill` wrote. */
  free(): Promise<void>
  unmount(): void
}

/** Mounts a tmpfs of `sizeBytes`; undefined (the suite skips) where mounting is not allowed. */
export function mountTmpfs(sizeBytes: number, what: string): Tmpfs | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'filestorage-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' })
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    const reason = ((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim()
    if (process.env.CI === 'true') throw new Error(`CI must run the ${what} tests, but a tmpfs cannot be mounted: ${reason}`)
    console.warn(`\n[filestorage tests] SKIPPING the ${what} suite: a tmpfs cannot be mounted here (needs root): ${reason}\n`)
    return undefined
  }
  const filler = join(dir, 'filler')
  return {
    dir,
    async fill() {
      const handle = await open(filler, 'a')
      try {
        // Large writes first, then smaller ones down to a byte, until not even that fits.
        for (let size = 1024 * 1024; size >= 1; ) {
          try {
            await handle.write(Buffer.alloc(size))
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
            size = Math.floor(size / 2)
          }
        }
      } finally {
        await handle.close()
      }
    },
    free: () => rm(filler, { force: true }),
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' })
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' }) // still busy (a process about to exit): detach it
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
