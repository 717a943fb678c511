/**
 * Streaming a body of unknown length into an object, with bounded memory: the body is held in
 * memory up to one part (`partSize`); a body that ends there is handed back whole, to go up in one
 * request (PutObject, with its sha256 in the metadata and S3's own SHA-256 check). A longer one
 * goes up as a multipart upload, `concurrency` parts at a time, a part leaving memory once S3 has
 * it, so an upload holds at most (concurrency + 1) parts, and waits (pushing back on its body) when
 * they are all in flight. The caller completes the multipart upload (with its conditions) or aborts
 * it.
 *
 * Parts are `partSize` up to part 2,000, then twice that every 2,000 parts, so that a body of
 * unknown length can reach 31 x 2,000 parts' worth (496 GiB with 8 MiB parts) within S3's 10,000
 * parts; only such a body ever holds larger parts.
 */
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, type CompleteMultipartUploadCommandInput, UploadPartCommand } from '@aws-sdk/client-s3'
import { StorageError } from '../errors.js'
import type { Bucket } from './bucket.js'

/** S3's most parts in one object, and its smallest part (all but the last). */
export const MAX_S3_PARTS = 10_000
export const MIN_S3_PART = 5 * 1024 * 1024
/** A part's size doubles after every this many parts. */
const PARTS_PER_SIZE = 2_000

export interface UploadShape {
  partSize: number
  concurrency: number
}

export interface ObjectTarget {
  key: string
  contentType?: string
  /** The metadata the object gets if it goes up in parts (fixed when the multipart upload starts). */
  meta?: Record<string, string>
}

export interface CompletedPart {
  PartNumber: number
  ETag: string
}

/** What a finished body is: all of it in memory, or its parts up in a multipart upload still open. */
export type Finished = { bytes: Buffer } | { multipart: OpenMultipart }

export interface OpenMultipart {
  key: string
  uploadId: string
  parts: CompletedPart[]
  /** Its claim (multipart-claims.ts), released once it is completed or aborted. */
  claim?: string
}

export const partSizeFor = (part: number, base: number): number => base * 2 ** Math.floor((part - 1) / PARTS_PER_SIZE)

export class ObjectUpload {
  #chunks: Uint8Array[] = []
  #buffered = 0
  #uploadId: string | undefined
  #creating: Promise<string> | undefined
  #claim: string | undefined
  readonly #parts: CompletedPart[] = []
  readonly #inFlight = new Set<Promise<void>>()
  #failure: unknown
  #aborted = false

  constructor(
    private readonly bucket: Bucket,
    readonly target: ObjectTarget,
    private readonly shape: UploadShape,
  ) {}

  /** Takes a chunk of the body; waits while every part slot is busy. */
  async write(chunk: Uint8Array): Promise<void> {
    this.#throwIfFailed()
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#buffered += chunk.length
    if (this.#buffered > partSizeFor(this.#parts.length + this.#inFlight.size + 1, this.shape.partSize)) await this.#sendPart()
  }

  /** The body has ended: hands back what it is (see `Finished`). */
  async finish(): Promise<Finished> {
    this.#throwIfFailed()
    if (this.#uploadId === undefined && this.#creating === undefined) {
      const bytes = Buffer.concat(this.#chunks, this.#buffered)
      this.#chunks = []
      return { bytes }
    }
    if (this.#buffered > 0) await this.#sendPart()
    await Promise.all(this.#inFlight)
    this.#throwIfFailed()
    const uploadId = await this.#creating!
    return {
      multipart: {
        key: this.target.key,
        uploadId,
        parts: [...this.#parts].sort((a, b) => a.PartNumber - b.PartNumber),
        ...(this.#claim !== undefined ? { claim: this.#claim } : {}),
      },
    }
  }

  /** Gives up: the multipart upload, if one was started, is aborted (best effort: else the sweep does). */
  async abort(): Promise<void> {
    this.#aborted = true
    this.#chunks = []
    await Promise.allSettled(this.#inFlight)
    const uploadId = await this.#creating?.catch(() => undefined)
    if (uploadId !== undefined) await abortMultipart(this.bucket, this.#open(uploadId)).catch(() => {})
  }

  #open(uploadId: string): Omit<OpenMultipart, 'parts'> {
    return { key: this.target.key, uploadId, ...(this.#claim !== undefined ? { claim: this.#claim } : {}) }
  }

  async #sendPart(): Promise<void> {
    const number = this.#parts.length + this.#inFlight.size + 1
    if (number > MAX_S3_PARTS) {
      throw new StorageError('payload_too_large', `the body is larger than ${MAX_S3_PARTS} parts of the s3 store can hold`)
    }
    const body = Buffer.concat(this.#chunks, this.#buffered)
    this.#chunks = []
    this.#buffered = 0
    this.#creating ??= this.#create()
    while (this.#inFlight.size >= this.shape.concurrency) await Promise.race(this.#inFlight)
    this.#throwIfFailed()
    const sending: Promise<void> = this.#creating
      .then(async (uploadId) => {
        const r = await this.bucket.client.send(
          new UploadPartCommand({ Bucket: this.bucket.name, Key: this.target.key, UploadId: uploadId, PartNumber: number, Body: body, ContentLength: body.length }),
        )
        this.#parts.push({ PartNumber: number, ETag: r.ETag ?? '' })
      })
      .catch((e: unknown) => {
        this.#failure ??= e
      })
      .finally(() => this.#inFlight.delete(sending))
    this.#inFlight.add(sending)
  }

  async #create(): Promise<string> {
    const { uploadId, claim } = await this.bucket.claims.create(this.target)
    this.#claim = claim
    if (this.#aborted) await abortMultipart(this.bucket, this.#open(uploadId)).catch(() => {})
    return uploadId
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure
  }
}

/** Aborts a multipart upload, then releases its claim. */
export async function abortMultipart(bucket: Bucket, upload: Omit<OpenMultipart, 'parts'>): Promise<void> {
  await bucket.client.send(new AbortMultipartUploadCommand({ Bucket: bucket.name, Key: upload.key, UploadId: upload.uploadId }))
  await bucket.claims.release(upload.claim)
}

/** Completes a multipart upload with `extra` (conditions); its S3 ETag. */
export async function completeMultipart(bucket: Bucket, upload: OpenMultipart, extra: Partial<CompleteMultipartUploadCommandInput> = {}): Promise<string> {
  const r = await bucket.client.send(
    new CompleteMultipartUploadCommand({ Bucket: bucket.name, Key: upload.key, UploadId: upload.uploadId, MultipartUpload: { Parts: upload.parts }, ...extra }),
  )
  await bucket.claims.release(upload.claim)
  return r.ETag ?? ''
}
