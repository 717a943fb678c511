/**
 * Stores written by earlier versions kept each file's attributes in a JSON sidecar at
 * `.filestorage/meta/<path>`. At start-up those that still describe their file (same inode, size
 * and mtime) become file records (file-records.ts); then the sidecar tree is removed. A crash part
 * way only means the next start does the rest: giving a file its record twice is harmless.
 */
import type { Dirent } from 'node:fs'
import { lstat, readdir, readFile, rm } from 'node:fs/promises'
import { join, relative } from 'node:path'
import type { FileRecord, FileRecords } from './file-records.js'
import type { DiskLayout } from './layout.js'

interface LegacySidecar {
  v: 1
  sha256: string
  size: number
  mtimeMs: number
  ino: number
  contentType: string
  metadata: Record<string, unknown>
  created: string
}

/** Migrates the sidecars of `layout`, if any; returns how many files got their record. */
export async function migrateLegacySidecars(layout: DiskLayout, records: FileRecords): Promise<number> {
  let migrated = 0
  const walk = async (dir: string): Promise<void> => {
    let entries: Dirent[]
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries) {
      const abs = join(dir, entry.name)
      if (entry.isDirectory()) await walk(abs)
      else if (entry.isFile() && (await migrateOne(layout, records, abs))) migrated++
    }
  }
  await walk(layout.legacyMetaDir)
  await rm(layout.legacyMetaDir, { recursive: true, force: true })
  return migrated
}

async function migrateOne(layout: DiskLayout, records: FileRecords, sidecarFile: string): Promise<boolean> {
  let sidecar: LegacySidecar
  try {
    sidecar = JSON.parse(await readFile(sidecarFile, 'utf8')) as LegacySidecar
  } catch {
    return false
  }
  if (sidecar.v !== 1) return false
  const data = join(layout.root, relative(layout.legacyMetaDir, sidecarFile))
  const stats = await lstat(data).catch(() => null)
  const same = stats?.isFile() && stats.ino === sidecar.ino && stats.size === sidecar.size && stats.mtimeMs === sidecar.mtimeMs
  if (!stats || !same) return false // stale: the file is described from its bytes, as any file put there by hand
  const { sha256, size, mtimeMs, contentType, metadata, created } = sidecar
  const record: FileRecord = { v: 2, sha256, size, mtimeMs, contentType, metadata, created }
  return records.adopt(data, stats, record)
}
