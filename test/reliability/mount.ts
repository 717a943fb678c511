/**
 * A small tmpfs for the full-disk audit. Mounting needs root (CI runs as root); where it is not
 * allowed the audit is skipped with the reason, except under CI=true, where it fails.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rmdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface Mounted {
  path: string
  unmount(): Promise<void>
}

/** Mounts a `mib` MiB tmpfs on a fresh folder; undefined (with the reason printed) when mounting is not allowed here. */
export async function mountTmpfs(mib: number): Promise<Mounted | undefined> {
  const path = await mkdtemp(join(tmpdir(), 'filestorage-rel-tmpfs-'))
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', path], { timeout: 10_000 })
  } catch (e) {
    await rmdir(path)
    const reason = `mounting a ${mib} MiB tmpfs is not allowed here (${(e as Error).message.trim().split('\n').pop()}); it needs root`
    if (process.env.CI === 'true') throw new Error(`CI must run the full-disk audit: ${reason}`)
    console.warn(`\n[reliability] SKIPPING the full-disk audit: ${reason}\n`)
    return undefined
  }
  return {
    path,
    async unmount() {
      await run('umount', [path], { timeout: 10_000 }).catch(() => run('umount', ['-l', path], { timeout: 10_000 }))
      await rmdir(path)
    },
  }
}
