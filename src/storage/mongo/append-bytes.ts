/**
 * The bytes of one append (tus PATCH) on the MongoDB store: the body goes into a new GridFS file as
 * it is received, each chunk handed to the bucket before the next is read (the core's
 * `receiveBody`), so a body that breaks off leaves exactly the counted and hashed prefix written.
 *
 * The GridFS file is created at the first byte, under a lease like every GridFS write, so an empty
 * append writes nothing. What the core's `acceptReceived` keeps is finished (the whole body, or the
 * prefix of a broken one with `keepPartial`); anything else is deleted at once, and a crash
 * part-way leaves a leased file the sweeper deletes.
 */
import type { ObjectId } from 'mongodb'
import { acceptReceived, type ReceivedBody, receiveBody } from '../append-body.js'
import type { AppendPartOptions } from '../types.js'
import type { GridFsBytes, GridFsWriter } from './gridfs-bytes.js'

export interface AppendedBytes extends ReceivedBody {
  /** True when the body broke off and its prefix was kept (`keepPartial`). */
  partial: boolean
  /** The GridFS file holding the bytes; absent when no byte arrived. */
  gridfsId?: ObjectId
  /** The registration its lease is under (lease-owners.ts). */
  owner?: string
}

/** Streams an append's body into GridFS, at most `maxBytes`; throws (having deleted the bytes) when nothing may be kept. */
export async function receiveAppend(
  body: ReadableStream<Uint8Array>,
  gridfs: GridFsBytes,
  options: AppendPartOptions,
  limits: { maxBytes: number; filename: string },
): Promise<AppendedBytes> {
  // A holder, so that the sink's assignment is seen below.
  const target: { writer?: GridFsWriter } = {}
  try {
    const received = await receiveBody(
      body,
      async (chunk) => {
        if (chunk.length === 0) return
        target.writer ??= await gridfs.create(limits.filename)
        await target.writer.write(chunk)
      },
      { maxBytes: limits.maxBytes, ...(options.expectedChecksum ? { checksum: options.expectedChecksum.algorithm } : {}) },
    )
    const { partial } = acceptReceived(received, options)
    await target.writer?.finish()
    return { ...received, partial, ...(target.writer ? { gridfsId: target.writer.id, owner: target.writer.owner } : {}) }
  } catch (e) {
    await target.writer?.abort().catch(() => {}) // its lease stays: the sweeper finishes the job
    throw e
  }
}
