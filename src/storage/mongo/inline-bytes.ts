/**
 * Bytes inline in a file's catalog record, as BSON Binary: the `mongo-inline` driver's storage,
 * and where the `mongo` store keeps files up to its threshold. A small file is read with its
 * record, in one round trip.
 */
import { Binary } from 'mongodb'
import type { ByteRange } from '../types.js'

/** A BSON document is at most 16 MiB; what is left above 15 MiB holds the path, metadata and the rest. */
export const MAX_INLINE_BYTES = 15 * 1024 * 1024

export const toBinary = (chunks: Uint8Array[]): Binary => new Binary(Buffer.concat(chunks))

/** The bytes of a record, or a range of them. */
export function inlineBytes(data: Binary | undefined, range?: ByteRange): Uint8Array {
  const bytes = data?.value() ?? new Uint8Array(0)
  return range ? bytes.subarray(range.start, range.end + 1) : bytes
}
