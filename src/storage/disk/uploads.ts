/**
 * Part uploads on disk (SPEC 3.3). Each upload is a folder under `.filestorage/uploads/<id>/`:
 *
 *   session.json         where the file goes and with what attributes (rewritten whole when the size is declared)
 *   part-<n>             the bytes of part n (written to a temporary file, renamed here when complete)
 *   part-<n>.json        its size and sha256, written last: a part counts once this exists
 *
 * Appends (tus) are parts too: the next number, committed under the upload's lock only if the
 * upload still has the offset the client named. An append whose body broke off keeps what arrived.
 *
 * Completing streams the parts in order into one temporary file, hashing as it goes, and commits it
 * like any upload; then the folder is removed.
 */
import { createReadStream } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { acceptReceived, appendRoom, type ReceivedBody, receiveBody } from '../append-body.js'
import { checkAnnouncedSize, DigestStream, verifySha256 } from '../digest.js'
import type { KeyedLock } from '../keyed-lock.js'
import {
  checkAppend,
  checkCreateOptions,
  checkDeclaredSize,
  checkPartNumber,
  checkTotal,
  checkUploadId,
  isExpired,
  newUploadRecord,
  partsToAssemble,
  publicSession,
  receivedBytes,
  uploadConditions,
  uploadNotFound,
  type UploadPolicy,
  type UploadRecord,
  uploadStatusOf,
} from '../part-uploads.js'
import { bodyChunks } from '../streams.js'
import type {
  AppendPartOptions,
  AppendResult,
  CompleteUploadOptions,
  CreateUploadOptions,
  PartInfo,
  PutPartOptions,
  PutResult,
  StoredFile,
  UploadSession,
  UploadStatus,
  WritePreconditions,
} from '../types.js'
import type { CommitRequest } from './disk-driver.js'
import { type DiskLayout, isErrno, tmpFileWriter } from './layout.js'
import { TmpFileSink } from './tmp-file-sink.js'

interface SessionFile extends UploadRecord {
  v: 1
}

export interface UploadCommitter {
  precheck(path: string, conditions: WritePreconditions): Promise<StoredFile | null>
  commit(path: string, request: CommitRequest): Promise<PutResult>
}

/** Temporary files untouched for this long belong to no live upload (a live one keeps writing). */
const STALE_TMP_MS = 60 * 60 * 1000
const READ_CHUNK = 1024 * 1024

const partName = (n: number) => `part-${String(n).padStart(5, '0')}`

export class DiskUploads {
  constructor(
    private readonly layout: DiskLayout,
    private readonly policy: UploadPolicy,
    private readonly locks: KeyedLock,
    private readonly files: UploadCommitter,
  ) {}

  async create(path: string, options: CreateUploadOptions): Promise<UploadSession> {
    checkCreateOptions(options)
    await this.files.precheck(path, options)
    const session: SessionFile = { v: 1, ...newUploadRecord(path, this.policy, options) }
    await mkdir(this.#dir(session.uploadId), { recursive: true })
    await this.#writeSession(session)
    return publicSession(session)
  }

  async putPart(uploadId: string, part: number, body: ReadableStream<Uint8Array>, options: PutPartOptions = {}) {
    checkPartNumber(part)
    const session = await this.#session(uploadId)
    checkAnnouncedSize(options.expectedSize, session.partSizeLimit)
    const tmp = this.layout.tmpFile()
    try {
      const digest = new DigestStream(session.partSizeLimit)
      await pipeline(bodyChunks(body), digest, tmpFileWriter(tmp))
      const info: PartInfo = { part, size: digest.size, sha256: digest.digest() }
      verifySha256(options.expectedSha256, info.sha256)
      return await this.locks.run(uploadId, async () => {
        const current = await this.#session(uploadId) // completed or aborted meanwhile?
        const others = (await this.#parts(uploadId)).filter((p) => p.part !== part)
        checkTotal(current, receivedBytes(others) + info.size)
        await this.#commitPart(uploadId, tmp, info)
        return info
      })
    } finally {
      await rm(tmp, { force: true })
    }
  }

  async append(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult> {
    const session = await this.#session(uploadId)
    // Refuse a stale offset before reading a byte; checked again, atomically, at the commit.
    const before = receivedBytes(await this.#parts(uploadId))
    checkAppend(session, options.offset, before, 0)
    const maxBytes = appendRoom(session, options.offset, options.expectedSize)
    const tmp = this.layout.tmpFile()
    try {
      const file = new TmpFileSink(tmp)
      let received: ReceivedBody
      try {
        received = await receiveBody(body, (chunk) => file.write(chunk), {
          maxBytes,
          ...(options.expectedChecksum ? { checksum: options.expectedChecksum.algorithm } : {}),
        })
      } finally {
        await file.close()
      }
      const { partial } = acceptReceived(received, options)
      return await this.locks.run(uploadId, async () => {
        const current = await this.#session(uploadId)
        const parts = await this.#parts(uploadId)
        const offset = receivedBytes(parts)
        checkAppend(current, options.offset, offset, received.size)
        if (received.size === 0) return { part: null, offset, partial }
        const info: PartInfo = { part: (parts.at(-1)?.part ?? 0) + 1, size: received.size, sha256: received.sha256 }
        await this.#commitPart(uploadId, tmp, info)
        return { part: info, offset: offset + info.size, partial }
      })
    } finally {
      await rm(tmp, { force: true })
    }
  }

  async declareSize(uploadId: string, totalSize: number): Promise<UploadStatus> {
    return this.locks.run(uploadId, async () => {
      const session = await this.#session(uploadId)
      checkDeclaredSize(session, receivedBytes(await this.#parts(uploadId)), totalSize)
      if (session.totalSize === undefined) await this.#writeSession({ ...session, totalSize })
      return this.status(uploadId)
    })
  }

  async status(uploadId: string): Promise<UploadStatus> {
    const session = await this.#session(uploadId)
    return uploadStatusOf(session, await this.#parts(uploadId))
  }

  async complete(uploadId: string, options: CompleteUploadOptions = {}): Promise<PutResult> {
    return this.locks.run(uploadId, async () => {
      const session = await this.#session(uploadId)
      const parts = partsToAssemble(session, await this.#parts(uploadId), options.parts)
      await this.files.precheck(session.path, session) // fail before copying gigabytes
      const dir = this.#dir(uploadId)
      const commit = async (tmp: string, sha256: string) => {
        verifySha256(options.expectedSha256, sha256)
        const result = await this.files.commit(session.path, {
          tmp,
          sha256,
          metadata: session.metadata,
          ...(session.contentType !== undefined ? { contentType: session.contentType } : {}),
          ...uploadConditions(session),
        })
        await rm(dir, { recursive: true, force: true })
        return result
      }
      const [only] = parts
      if (parts.length === 1 && only!.size <= (session.maxBytes ?? Number.POSITIVE_INFINITY)) {
        // One part is the whole file, hashed as it arrived (a tus upload in one PATCH, the
        // client's default): it becomes the file as it is, without copying or hashing it again.
        return commit(join(dir, partName(only!.part)), only!.sha256)
      }
      const tmp = this.layout.tmpFile()
      try {
        const digest = new DigestStream(session.maxBytes)
        async function* concatenated() {
          for (const p of parts) yield* createReadStream(join(dir, partName(p.part)), { highWaterMark: READ_CHUNK })
        }
        await pipeline(concatenated, digest, tmpFileWriter(tmp))
        return await commit(tmp, digest.digest())
      } finally {
        await rm(tmp, { force: true })
      }
    })
  }

  async abort(uploadId: string): Promise<void> {
    await this.locks.run(uploadId, async () => {
      await this.#session(uploadId)
      await this.layout.discard(this.#dir(uploadId))
    })
  }

  /** Removes expired uploads, temporary files no live write owns, and leftovers of deletions. */
  async sweep(now: Date): Promise<{ removed: number }> {
    let removed = 0
    for (const id of await readdir(this.layout.uploadsDir).catch(() => [])) {
      const session = await this.#readSession(id)
      const abandoned = session
        ? isExpired(session.expiresAt, now)
        : await olderThan(join(this.layout.uploadsDir, id), this.policy.ttlMs, now)
      if (abandoned) {
        await this.locks.run(id, () => this.layout.discard(join(this.layout.uploadsDir, id)))
        removed++
      }
    }
    for (const name of await readdir(this.layout.tmpDir).catch(() => [])) {
      const p = join(this.layout.tmpDir, name)
      if (await olderThan(p, STALE_TMP_MS, now)) {
        await rm(p, { force: true, recursive: true })
        removed++
      }
    }
    for (const name of await readdir(this.layout.trashDir).catch(() => [])) {
      await rm(join(this.layout.trashDir, name), { recursive: true, force: true })
      removed++
    }
    return { removed }
  }

  #dir(uploadId: string): string {
    return join(this.layout.uploadsDir, uploadId)
  }

  async #writeSession(session: SessionFile): Promise<void> {
    const tmp = this.layout.tmpFile()
    await writeFile(tmp, JSON.stringify(session))
    await rename(tmp, join(this.#dir(session.uploadId), 'session.json'))
  }

  /** Moves a finished part into the upload, then its record: the part counts from that moment. */
  async #commitPart(uploadId: string, tmp: string, info: PartInfo): Promise<void> {
    const dir = this.#dir(uploadId)
    await rename(tmp, join(dir, partName(info.part)))
    await writeFile(join(dir, `${partName(info.part)}.json`), JSON.stringify(info))
  }

  async #readSession(uploadId: string): Promise<SessionFile | null> {
    try {
      const session = JSON.parse(await readFile(join(this.#dir(uploadId), 'session.json'), 'utf8')) as SessionFile
      return session.v === 1 ? session : null
    } catch {
      return null
    }
  }

  /** The live session, or `not_found` for an unknown, finished or expired one. */
  async #session(uploadId: string): Promise<SessionFile> {
    checkUploadId(uploadId)
    const session = await this.#readSession(uploadId)
    if (!session || isExpired(session.expiresAt)) throw uploadNotFound(uploadId)
    return session
  }

  /** Received parts whose bytes match their record, by number. */
  async #parts(uploadId: string): Promise<PartInfo[]> {
    const dir = this.#dir(uploadId)
    const parts: PartInfo[] = []
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json') || !name.startsWith('part-')) continue
      try {
        const info = JSON.parse(await readFile(join(dir, name), 'utf8')) as PartInfo
        const bytes = await stat(join(dir, partName(info.part)))
        if (bytes.size === info.size) parts.push(info)
      } catch (e) {
        if (!isErrno(e, 'ENOENT') && !(e instanceof SyntaxError)) throw e
      }
    }
    return parts.sort((a, b) => a.part - b.part)
  }
}

async function olderThan(path: string, ms: number, now: Date): Promise<boolean> {
  try {
    return now.getTime() - (await stat(path)).mtimeMs > ms
  } catch {
    return false
  }
}
