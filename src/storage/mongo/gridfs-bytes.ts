/**
 * Bytes in a GridFS bucket, streamed both ways: the `gridfs` driver's storage, and where the
 * `mongo` store puts files over the inline threshold and the parts of uploads in parts.
 *
 * Every file is written under a lease (byte-leases.ts) of this process, so a write that never
 * commits is found and removed by the sweeper; a write stops once this process lost its
 * registration (lease-owners.ts), since the sweeper may have deleted its bytes. Reads of a range ask the bucket for just the chunks that hold it.
 */
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import {
  type Db,
  FindCursor,
  GridFSBucket,
  type GridFSBucketReadStream,
  type GridFSBucketWriteStream,
  MongoRuntimeError,
  ObjectId,
} from 'mongodb'
import { StorageError } from '../errors.js'
import type { ByteRange } from '../types.js'
import { type ByteLeases, LEASE_RENEW_MS } from './byte-leases.js'
import { BUCKET } from './schema.js'

export class GridFsBytes {
  readonly bucket: GridFSBucket

  constructor(
    private readonly db: Db,
    readonly leases: ByteLeases,
  ) {
    this.bucket = new GridFSBucket(db, { bucketName: BUCKET })
  }

  /** Starts a new GridFS file; `filename` is informative (the path it was written for). */
  async create(filename: string): Promise<GridFsWriter> {
    const id = new ObjectId()
    const owner = await this.leases.take(id)
    return new GridFsWriter(this, id, owner, this.bucket.openUploadStreamWithId(id, filename))
  }

  /**
   * Opens a file, or an inclusive byte range of it, once its files document is found; null when
   * it is gone (replaced and deleted since its record was read).
   */
  async open(id: ObjectId, size: number, range?: ByteRange): Promise<Readable | null> {
    if (size === 0) return Readable.from([]) // no chunks, and the bucket emits no 'file' event for it
    // The bucket's `end` is exclusive. Both are always given: without them the bucket sets a limit
    // of 0 on its chunk cursor, which the driver then mistakes for a finite one when batches are capped.
    const [start, end] = range ? [range.start, Math.min(range.end + 1, size)] : [0, size]
    const stream = this.bucket.openDownloadStream(id, { start, end })
    stream.once('file', () => limitBatches(stream))
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

  /**
   * Deletes several leased files at once, then their leases: one query on the chunks for all of
   * them (on FerretDB v1, which scans the collection for every query, one scan instead of one each).
   */
  async retireAll(ids: ObjectId[]): Promise<void> {
    if (ids.length === 0) return
    await this.db.collection(`${BUCKET}.files`).deleteMany({ _id: { $in: ids } })
    await this.db.collection(`${BUCKET}.chunks`).deleteMany({ files_id: { $in: ids } })
    await this.leases.releaseAll(ids)
  }
}

/** A GridFS file being written. Chunks are flushed as they fill, with backpressure. */
export class GridFsWriter {
  #renewed = Date.now()

  constructor(
    private readonly store: GridFsBytes,
    readonly id: ObjectId,
    /** The registration its lease is under: the commit confirms it (see lease-owners.ts). */
    readonly owner: string,
    private readonly stream: GridFSBucketWriteStream,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.stream.errored) throw this.stream.errored
    if (this.store.leases.owners.revoked(this.owner)) {
      throw new StorageError('store_unavailable', 'this instance lost its registration with the store while writing; try again')
    }
    if (!this.stream.write(chunk)) await once(this.stream, 'drain')
    if (Date.now() - this.#renewed > LEASE_RENEW_MS) {
      this.#renewed = Date.now()
      await this.store.leases.take(this.id, this.owner)
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

/** Chunks per cursor batch of a download: about 4 MiB with the default 255 KiB chunks. */
const CHUNKS_PER_BATCH = 16

/**
 * Caps the batches of a download's chunk cursor. The bucket leaves the batch size to the server,
 * which sends up to 16 MiB per batch (FerretDB v1: about 40 MB), and the driver holds a whole
 * batch, plus its decoded copy, in memory: a 1 GiB download grew the service by 170 MiB. The
 * bucket has no option for it, so this sets it on the cursor the bucket made, when the bucket
 * announces the file and before it asks for the first chunk. Without that cursor (another driver
 * version) reads still work, with the server's batches.
 */
function limitBatches(stream: GridFSBucketReadStream): void {
  const cursor = (stream as unknown as { s?: { cursor?: unknown } }).s?.cursor
  if (cursor instanceof FindCursor) cursor.batchSize(CHUNKS_PER_BATCH)
}

function isFileNotFound(e: unknown): boolean {
  return e instanceof MongoRuntimeError && /not found/i.test(e.message)
}
