/**
 * Where a new file's bytes go, decided per file and written while they stream in (hashed and
 * counted on the way, as every driver does):
 *
 * - when the size is announced (Content-Length), the choice is made up front: inline up to the
 *   threshold, GridFS above it;
 * - when it is not, the body is held in memory only up to the threshold, then spilled into GridFS.
 *
 * Only the threshold is ever buffered. The client never sees which was used, except in the
 * informative `driver` of its FileInfo.
 */
import { pipeline } from 'node:stream/promises'
import type { Binary, ObjectId } from 'mongodb'
import { DigestStream, verifySha256 } from '../digest.js'
import { payloadTooLarge } from '../errors.js'
import type { GridFsBytes, GridFsWriter } from './gridfs-bytes.js'
import { toBinary } from './inline-bytes.js'

export interface Placement {
  /** Files up to this many bytes are kept inline; -1 keeps none inline. */
  inlineMaxBytes: number
  /** Whether larger files go to GridFS; when not, they are refused (`payload_too_large`). */
  gridfs: boolean
}

/** Every byte in GridFS: the `gridfs` driver, and the parts of uploads in parts. */
export const ALL_IN_GRIDFS: Placement = { inlineMaxBytes: -1, gridfs: true }

export interface WriteRequest {
  placement: Placement
  /** The announced size, when known: the choice is made up front. */
  expectedSize?: number
  maxBytes?: number
  /** Hex sha256 the bytes must have; on a mismatch they are deleted and `checksum_mismatch` thrown. */
  expectedSha256?: string
  /** Informative name of a GridFS file (the path it is written for). */
  filename: string
}

/** Bytes written and not yet referenced by a record: inline in memory, or a leased GridFS file. */
export interface WrittenBytes {
  size: number
  sha256: string
  data?: Binary
  gridfsId?: ObjectId
  /** The registration the GridFS file's lease is under (lease-owners.ts): confirmed before a record names it. */
  owner?: string
}

export async function writeBytes(
  source: AsyncIterable<Uint8Array>,
  gridfs: GridFsBytes,
  request: WriteRequest,
): Promise<WrittenBytes> {
  const { inlineMaxBytes, gridfs: spill } = request.placement
  const digest = new DigestStream(request.maxBytes)
  const buffered: Uint8Array[] = []
  let held = 0
  // Set once the bytes go to GridFS (a holder, so that the closures below share it).
  const spilled: { writer?: GridFsWriter } = {}

  const toGridFs = async () => {
    if (!spill) throw payloadTooLarge(inlineMaxBytes)
    const writer = await gridfs.create(request.filename)
    spilled.writer = writer
    for (const chunk of buffered.splice(0)) await writer.write(chunk)
  }

  try {
    if ((request.expectedSize ?? 0) > inlineMaxBytes) await toGridFs()
    await pipeline(source, digest, async (chunks: AsyncIterable<Uint8Array>) => {
      for await (const chunk of chunks) {
        if (spilled.writer) {
          await spilled.writer.write(chunk)
          continue
        }
        buffered.push(chunk)
        held += chunk.length
        if (held > inlineMaxBytes) await toGridFs()
      }
      await spilled.writer?.finish()
    })
  } catch (e) {
    await spilled.writer?.abort().catch(() => {}) // its lease stays: the sweeper finishes the job
    throw e
  }
  const written = { size: digest.size, sha256: digest.digest() }
  const bytes: WrittenBytes = spilled.writer ? { ...written, gridfsId: spilled.writer.id, owner: spilled.writer.owner } : { ...written, data: toBinary(buffered) }
  try {
    verifySha256(request.expectedSha256, bytes.sha256)
  } catch (e) {
    await discardBytes(gridfs, bytes)
    throw e
  }
  return bytes
}

/** Deletes bytes no record points at (a failed write's); inline ones simply go with the request. */
export async function discardBytes(gridfs: GridFsBytes, bytes: WrittenBytes): Promise<void> {
  if (bytes.gridfsId) await gridfs.retire(bytes.gridfsId).catch(() => {}) // else its lease brings the sweeper
}
