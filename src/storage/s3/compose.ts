/**
 * Composing an upload's staged parts (objects of any size, staging.ts) into one multipart upload of
 * the file's key, within S3's rules: every part but the last at least 5 MiB, at most 10,000 parts,
 * at most 5 GiB a copied range.
 *
 * The parts' bytes are cut into pieces, in order: a run of at least `minPiece` bytes within one
 * staged part is copied server-side (UploadPartCopy of its range, never passing through the
 * service); smaller parts, and the ends of larger ones around them, are merged into pieces of at
 * least `minPiece` streamed through the service (read, concatenated, uploaded). `minPiece` is 5 MiB,
 * more for files so large that 5 MiB pieces would pass 8,000 parts. So any SPEC part number and
 * size works, and a tus upload's small appends are merged, never refused.
 *
 * The sha256 of the whole is computed by reading every staged byte once, in order (the copies run
 * meanwhile, `concurrency` at a time); the merged pieces are made from the same reads.
 */
import { createHash } from 'node:crypto'
import { UploadPartCommand, UploadPartCopyCommand } from '@aws-sdk/client-s3'
import { StorageError } from '../errors.js'
import type { Bucket } from './bucket.js'
import { abortMultipart, type CompletedPart, MIN_S3_PART, type ObjectTarget, type OpenMultipart } from './object-upload.js'

/** A composed file has at most this many S3 parts (S3's 10,000, with room for ranges split at 5 GiB). */
const TARGET_PIECES = 8_000
/** The longest range one UploadPartCopy copies (S3's 5 GiB). */
export const MAX_COPY_RANGE = 5 * 1024 ** 3

/** A staged object's bytes, by key and size. */
export interface StagedBytes {
  key: string
  size: number
}

/** Bytes `start` to `end` (exclusive) of a staged object. */
interface Segment {
  source: StagedBytes
  start: number
  end: number
}

export type Piece = { kind: 'copy'; segment: Segment } | { kind: 'stream'; segments: Segment[]; size: number }

/** The pieces `staged` (in order) are composed of (see above). */
export function planPieces(staged: StagedBytes[], maxCopyRange = MAX_COPY_RANGE): Piece[] {
  const total = staged.reduce((sum, s) => sum + s.size, 0)
  const minPiece = Math.max(MIN_S3_PART, Math.ceil(total / TARGET_PIECES))
  const pieces: Piece[] = []
  let pending: Segment[] = []
  let pendingSize = 0
  const take = (segment: Segment) => {
    pending.push(segment)
    pendingSize += segment.end - segment.start
    if (pendingSize >= minPiece) {
      pieces.push({ kind: 'stream', segments: pending, size: pendingSize })
      pending = []
      pendingSize = 0
    }
  }
  for (const source of staged) {
    let offset = 0
    if (pendingSize > 0) {
      // Fill the piece under way first, from the start of this part.
      const length = Math.min(source.size, minPiece - pendingSize)
      if (length > 0) take({ source, start: 0, end: length })
      offset = length
    }
    const rest = source.size - offset
    if (rest <= 0) continue
    if (pendingSize === 0 && rest >= minPiece) {
      const ranges = Math.ceil(rest / maxCopyRange)
      const size = Math.ceil(rest / ranges)
      for (let start = offset; start < source.size; start += size) {
        pieces.push({ kind: 'copy', segment: { source, start, end: Math.min(source.size, start + size) } })
      }
    } else {
      take({ source, start: offset, end: source.size })
    }
  }
  if (pendingSize > 0) pieces.push({ kind: 'stream', segments: pending, size: pendingSize })
  return pieces
}

/** A few tasks at a time: `run` waits while `limit` are running; `settled` waits for all, throwing the first failure. */
class TaskPool {
  readonly #running = new Set<Promise<void>>()
  #failure: unknown

  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    while (this.#running.size >= this.limit) await Promise.race(this.#running)
    this.#throwIfFailed()
    const running: Promise<void> = task()
      .catch((e: unknown) => {
        this.#failure ??= e
      })
      .finally(() => this.#running.delete(running))
    this.#running.add(running)
  }

  async settled(): Promise<void> {
    await Promise.all(this.#running)
    this.#throwIfFailed()
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure
  }
}

/** Reads a segment of a staged object, chunk by chunk. */
async function* segmentBytes(bucket: Bucket, segment: Segment): AsyncGenerator<Buffer> {
  if (segment.end <= segment.start) return
  const opened = await bucket.get(segment.source.key, { range: { start: segment.start, end: segment.end - 1 } })
  if (!opened) throw new StorageError('upload_incomplete', 'a part of the upload is gone; send it again')
  let size = 0
  for await (const chunk of opened.body) {
    size += (chunk as Buffer).length
    yield chunk as Buffer
  }
  if (size !== segment.end - segment.start) throw new StorageError('upload_incomplete', 'a part of the upload changed; send it again')
}

/** Reads `staged` whole, in order, into memory, with its sha256 (a composed file small enough to go up in one request). */
export async function readStaged(bucket: Bucket, staged: StagedBytes[]): Promise<{ bytes: Buffer; sha256: string }> {
  const hash = createHash('sha256')
  const chunks: Buffer[] = []
  for (const source of staged) {
    for await (const chunk of segmentBytes(bucket, { source, start: 0, end: source.size })) {
      hash.update(chunk)
      chunks.push(chunk)
    }
  }
  return { bytes: Buffer.concat(chunks), sha256: hash.digest('hex') }
}

/**
 * Composes `staged` into a new multipart upload of `target` (left open, for the caller to complete
 * or abort), reading every byte once for the sha256 of the whole.
 */
export async function compose(bucket: Bucket, staged: StagedBytes[], target: ObjectTarget, concurrency: number): Promise<{ upload: OpenMultipart; sha256: string }> {
  const { uploadId, claim } = await bucket.claims.create(target)
  const parts: CompletedPart[] = []
  const pool = new TaskPool(concurrency)
  const hash = createHash('sha256')
  try {
    for (const [i, piece] of planPieces(staged).entries()) {
      const PartNumber = i + 1
      if (piece.kind === 'copy') {
        const { source, start, end } = piece.segment
        await pool.run(async () => {
          const r = await bucket.client.send(
            new UploadPartCopyCommand({
              Bucket: bucket.name,
              Key: target.key,
              UploadId: uploadId,
              PartNumber,
              CopySource: bucket.copySource(source.key),
              CopySourceRange: `bytes=${start}-${end - 1}`,
            }),
          )
          parts.push({ PartNumber, ETag: r.CopyPartResult?.ETag ?? '' })
        })
        for await (const chunk of segmentBytes(bucket, piece.segment)) hash.update(chunk)
      } else {
        const chunks: Buffer[] = []
        for (const segment of piece.segments) {
          for await (const chunk of segmentBytes(bucket, segment)) {
            hash.update(chunk)
            chunks.push(chunk)
          }
        }
        const Body = Buffer.concat(chunks, piece.size)
        await pool.run(async () => {
          const r = await bucket.client.send(
            new UploadPartCommand({ Bucket: bucket.name, Key: target.key, UploadId: uploadId, PartNumber, Body, ContentLength: Body.length }),
          )
          parts.push({ PartNumber, ETag: r.ETag ?? '' })
        })
      }
    }
    await pool.settled()
  } catch (e) {
    await pool.settled().catch(() => {})
    await abortMultipart(bucket, { key: target.key, uploadId, ...(claim !== undefined ? { claim } : {}) }).catch(() => {})
    throw e
  }
  parts.sort((a, b) => a.PartNumber - b.PartNumber)
  return { upload: { key: target.key, uploadId, parts, ...(claim !== undefined ? { claim } : {}) }, sha256: hash.digest('hex') }
}
