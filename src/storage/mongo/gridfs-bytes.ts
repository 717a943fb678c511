/**
 * Bytes in a GridFS bucket, streamed both ways: the `gridfs` driver's storage, and where the
 * `mongo` store puts files over the inline threshold and the parts of uploads in parts.
 *
 * Every file is written under a lease (byte-leases.ts), so a write that never commits is found
 * and removed by the sweeper. Reads of a range ask the bucket for just the chunks that hold it.
 */
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { type Db, GridFSBucket, type GridFSBucketWriteStream, MongoRuntimeError, ObjectId } from 'mongodb'
import type { ByteRange } from '../types.js'
import { type ByteLeases, LEASE_RENEW_MS } from './byte-leases.js'
import { BUCKET } from './schema.js'

export class GridFsBytes {
  readonly bucket: GridFSBucket

  constructor(
    db: Db,
    readonly leases: ByteLeases,
  ) {
    this.bucket = new GridFSBucket(db, { bucketName: BUCKET })
  }

  /** Starts a new GridFS file; `filename` is informative (the path it was written for). */
  async create(filename: string): Promise<GridFsWriter> {
    const id = new ObjectId()
    await this.leases.take(id)
    return new GridFsWriter(this, id, this.bucket.openUploadStreamWithId(id, filename))
  }

  /**
   * Opens a file, or an inclusive byte range of it, once its files document is found; null when
   * it is gone (replaced and deleted since its record was read).
   */
  async open(id: ObjectId, size: number, range?: ByteRange): Promise<Readable | null> {
    if (size === 0) return Readable.from([]) // no chunks, and the bucket emits no 'file' event for it
    // The bucket's `end` is exclusive, and it wants both ends or neither.
    const stream = this.bucket.openDownloadStream(id, range ? { start: range.start, end: Math.min(range.end + 1, size) } : {})
    const found = once(stream, 'file').then(
      () => true,
      (e: unknown) => {
        if (isFileNotFound(e)) return false
        throw e
      },
    )
    stream.pause()
    stream.read(0) // starts the lookup of the files document
    if (await found) return stream
    stream.destroy()
    return null
  }

  /** Deletes a file's bytes (its chunks too when the files document never got written). */
  async delete(id: ObjectId): Promise<void> {
    try {
      await this.bucket.delete(id)
    } catch (e) {
      if (!isFileNotFound(e)) throw e // gone already, or an upload that never finished: its chunks went too
    }
  }

  /** Deletes a file whose lease the caller holds, then lets go of the lease. */
  async retire(id: ObjectId): Promise<void> {
    await this.delete(id)
    await this.leases.release(id)
  }
}

/** A GridFS file being written. Chunks are flushed as they fill, with backpressure. */
export class GridFsWriter {
  #renewed = Date.now()

  constructor(
    private readonly store: GridFsBytes,
    readonly id: ObjectId,
    private readonly stream: GridFSBucketWriteStream,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.stream.errored) throw this.stream.errored
    if (!this.stream.write(chunk)) await once(this.stream, 'drain')
    if (Date.now() - this.#renewed > LEASE_RENEW_MS) {
      this.#renewed = Date.now()
      await this.store.leases.take(this.id)
    }
  }

  /** Writes the last chunk and the files document. */
  async finish(): Promise<void> {
    this.stream.end()
    await finished(this.stream)
  }

  /**
   * Gives up: deletes what was written. The lease stays, so the sweeper deletes again whatever an
   * insert still in flight adds after this.
   */
  async abort(): Promise<void> {
    this.stream.destroy()
    await this.store.delete(this.id)
  }
}

function isFileNotFound(e: unknown): boolean {
  return e instanceof MongoRuntimeError && /not found/i.test(e.message)
}
