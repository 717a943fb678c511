/**
 * The records of uploads on disk (driver.ts `UploadRecords`), in each upload's folder:
 *
 *   session.json    what the upload was created with (rewritten whole when its size is declared)
 *   complete.json   how far its completion went: its journal, then what it stored (or that it was
 *                   aborted); absent until a completion writes its journal
 *
 * Each is written whole to a temporary file and renamed into place, so a reader sees the old one or
 * the new one. A change holds a lock of its own (`record:<id>`, across processes) while it compares
 * and writes, and nothing else, so it never waits for a completion holding the upload. The version
 * a change compares is the two files' text.
 */
import { mkdir, readdir, readFile, rm, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { UploadRecords, UploadState, VersionedState } from '../driver.js'
import type { PutResult, StoredFile } from '../types.js'
import { isExpired, type UploadRecord } from '../uploads/rules.js'
import { isErrno, type DiskLayout, writeThenRename } from './layout.js'
import type { StoreLocks } from './store-locks.js'

export const SESSION = 'session.json'
export const COMPLETION = 'complete.json'

type Completion = Pick<UploadState, 'completing' | 'journal' | 'finished'>

/** A completion journal as versions before the upload engine wrote it: the file committed, by name and inode. */
interface JournalV1 {
  v: 1
  source: string
  ino: number
  file: StoredFile
  created: boolean
}

export class DiskUploadRecords implements UploadRecords {
  constructor(
    private readonly layout: DiskLayout,
    private readonly locks: StoreLocks,
    /** Removes an upload's folder at once (see DiskDriver). */
    private readonly discardTree: (abs: string) => Promise<void>,
  ) {}

  dir(uploadId: string): string {
    return join(this.layout.uploadsDir, uploadId)
  }

  async create(state: UploadState): Promise<void> {
    const dir = this.dir(state.uploadId)
    await mkdir(dir, { recursive: true })
    try {
      await this.#write(state.uploadId, SESSION, sessionOf(state))
    } catch (e) {
      await rm(dir, { recursive: true, force: true }) // a full disk leaves no empty upload behind
      throw e
    }
  }

  async read(uploadId: string): Promise<VersionedState | null> {
    const texts = await this.#texts(uploadId)
    return texts && { state: stateOf(texts), version: texts.join('\0') }
  }

  async update(uploadId: string, version: string, next: UploadState): Promise<boolean> {
    return this.locks.run(`record:${uploadId}`, async () => {
      const texts = await this.#texts(uploadId)
      if (!texts || texts.join('\0') !== version) return false
      const [session, completion] = [JSON.stringify(sessionOf(next)), completionOf(next)]
      if (session !== texts[0]) await this.#write(uploadId, SESSION, sessionOf(next))
      if (completion) await this.#write(uploadId, COMPLETION, completion)
      else if (texts[1]) await unlink(join(this.dir(uploadId), COMPLETION))
      return true
    })
  }

  async remove(uploadId: string): Promise<void> {
    await this.discardTree(this.dir(uploadId))
  }

  async expired(now: Date, limit: number): Promise<string[]> {
    const expired: string[] = []
    for (const id of await readdir(this.layout.uploadsDir).catch(() => [] as string[])) {
      const texts = await this.#texts(id).catch(() => null)
      if (texts && isExpired(stateOf(texts).expiresAt, now)) expired.push(id)
      if (expired.length >= limit) break
    }
    return expired
  }

  /** The texts of `session.json` and `complete.json` (empty when absent); null when there is no session. */
  async #texts(uploadId: string): Promise<[string, string] | null> {
    const read = (name: string) =>
      readFile(join(this.dir(uploadId), name), 'utf8').catch((e: unknown) => {
        if (isErrno(e, 'ENOENT', 'ENOTDIR')) return null
        throw e
      })
    const session = await read(SESSION)
    return session === null ? null : [session, (await read(COMPLETION)) ?? '']
  }

  async #write(uploadId: string, name: string, value: unknown): Promise<void> {
    await writeThenRename(this.layout.tmpFile(), join(this.dir(uploadId), name), JSON.stringify(value))
  }
}

function sessionOf(state: UploadState): UploadRecord & { v: 1 } {
  const { completing: _c, journal: _j, finished: _f, ...record } = state
  return { v: 1, ...record }
}

function completionOf(state: UploadState): (Completion & { v: 2 }) | null {
  const { completing, journal, finished } = state
  if (!completing && !journal && !finished) return null
  return { v: 2, ...(completing ? { completing } : {}), ...(journal ? { journal } : {}), ...(finished ? { finished } : {}) }
}

function stateOf([session, completion]: [string, string]): UploadState {
  const { v: _v, ...record } = JSON.parse(session) as UploadRecord & { v: number }
  if (!completion) return record
  const parsed = JSON.parse(completion) as (Completion & { v: 2 }) | JournalV1
  if (parsed.v === 1) {
    const result: PutResult = { file: parsed.file, created: parsed.created }
    return { ...record, journal: { revision: '', result, note: { source: parsed.source, ino: parsed.ino } } }
  }
  const { v: _w, ...state } = parsed
  return { ...record, ...state }
}
