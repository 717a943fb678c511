/**
 * Disk stores for tests: opening one (the driver with the upload engine), and looking into its
 * reserved folder from outside, as an operator would: temporary files (kept per process under
 * .filestorage/tmp/<instance>/), trash, locks, and file records.
 */
import { lstat, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { DiskDriver, type DiskDriverOptions, type DriverStore, type UploadPolicy, withUploads } from '../../src/storage/index.js'

export type DiskStore = DriverStore<DiskDriver>

/** The disk store at `options.dir`, its uploads under the policy `uploads` (the default when none). */
export async function openDiskStore(options: DiskDriverOptions & { uploads?: Partial<UploadPolicy> }): Promise<DiskStore> {
  const { uploads, ...driver } = options
  return withUploads(await DiskDriver.open(driver), uploads)
}

/** Every file under `dir`, as paths relative to `base`. */
async function filesUnder(dir: string, base: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await filesUnder(p, base)))
    else out.push(p.slice(base.length + 1))
  }
  return out
}

/** The temporary files of every process of the store at `storageDir` (uploads in flight, or left by a crash). */
export const tmpFiles = (storageDir: string) => filesUnder(join(storageDir, '.filestorage/tmp'), join(storageDir, '.filestorage'))

/** The files of uploads in parts and tus uploads (parts, claims, records) under `.filestorage/uploads`. */
export async function uploadFiles(storageDir: string): Promise<{ path: string; size: number }[]> {
  const root = join(storageDir, '.filestorage')
  const paths = await filesUnder(join(root, 'uploads'), root)
  return Promise.all(paths.map(async (path) => ({ path, size: (await stat(join(root, path))).size })))
}

/**
 * What is left under .filestorage that nothing live owns: temporary files, trash, locks, and
 * records (holders) of inodes that have no name in the store.
 */
export async function leftovers(storageDir: string) {
  const internal = join(storageDir, '.filestorage')
  let orphanRecords = 0
  for (const shard of await readdir(join(internal, 'inodes')).catch(() => [])) {
    for (const name of await readdir(join(internal, 'inodes', shard))) {
      const p = join(internal, 'inodes', shard, name)
      if (name.endsWith('.json')) {
        if (!(await lstat(p.slice(0, -5)).catch(() => null))) orphanRecords++
      } else if ((await lstat(p)).nlink < 2) {
        orphanRecords++
      }
    }
  }
  return {
    tmp: await tmpFiles(storageDir),
    trash: await filesUnder(join(internal, 'trash'), internal),
    locks: await filesUnder(join(internal, 'locks'), internal),
    orphanRecords,
  }
}

export const NOTHING_LEFT = { tmp: [], trash: [], locks: [], orphanRecords: 0 }
