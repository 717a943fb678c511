/**
 * Hashing and counting while streaming: every driver pipes uploads through a `DigestStream`, so the
 * sha256 is known the moment the last byte is written, with no second read.
 */
import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { checksumMismatch, payloadTooLarge, StorageError } from './errors.js'

/**
 * How much a file writer of an upload buffers before it pushes back: several socket chunks, written
 * with one writev while the next ones arrive (Node's 16 KiB default holds less than one).
 */
export const STREAM_BUFFER_BYTES = 1024 * 1024

/**
 * What each side of a DigestStream holds: one socket chunk. It only passes chunks on, so more buys
 * nothing; at 1 MiB a side it held 2 MiB per upload whenever the disk was the slower end (40
 * uploads: 80 MiB), at no gain in speed.
 */
const DIGEST_STAGE_BYTES = 64 * 1024

/** The sha256 and size of what passes, refusing more than `maxBytes` (`payload_too_large`). */
export class Digest {
  readonly #hash: Hash = createHash('sha256')
  #size = 0

  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {}

  /** Counts and hashes `chunk`; throws `payload_too_large` once past the limit. */
  update(chunk: Uint8Array): void {
    this.#size += chunk.length
    if (this.#size > this.maxBytes) throw payloadTooLarge(this.maxBytes)
    this.#hash.update(chunk)
  }

  get size(): number {
    return this.#size
  }

  /** Hex sha256 of everything that passed; call once, at the end. */
  digest(): string {
    return this.#hash.digest('hex')
  }
}

/** A `Digest` as a pass-through stream, for pipelines. */
export class DigestStream extends Transform {
  readonly #digest: Digest

  constructor(maxBytes = Number.POSITIVE_INFINITY) {
    // One socket chunk on each side (the default, 16 KiB, holds less than one 64 KiB chunk).
    super({ highWaterMark: DIGEST_STAGE_BYTES })
    this.#digest = new Digest(maxBytes)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#digest.update(chunk)
    } catch (e) {
      callback(e as Error)
      return
    }
    callback(null, chunk)
  }

  get size(): number {
    return this.#digest.size
  }

  /** Hex sha256 of everything that passed; call once, after the stream finished. */
  digest(): string {
    return this.#digest.digest()
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/

/** Normalizes a client-given sha256 (hex, any case); throws `invalid_request` when malformed. */
export function parseSha256(value: string): string {
  const hex = value.trim().toLowerCase()
  if (!SHA256_HEX.test(hex)) {
    throw new StorageError('invalid_request', 'a sha256 must be 64 hexadecimal characters')
  }
  return hex
}

/** Throws `checksum_mismatch` when an expected sha256 was given and differs. */
export function verifySha256(expected: string | undefined, actual: string): void {
  if (expected !== undefined && expected !== actual) throw checksumMismatch(expected, actual)
}

/** Refuses at once a body whose announced size (Content-Length) is over the limit, before reading it. */
export function checkAnnouncedSize(expectedSize: number | undefined, maxBytes: number | undefined): void {
  if (maxBytes !== undefined && (expectedSize ?? 0) > maxBytes) throw payloadTooLarge(maxBytes)
}

/** Hex sha256 of nothing: the digest of an empty file. */
export const EMPTY_SHA256 = createHash('sha256').digest('hex')
