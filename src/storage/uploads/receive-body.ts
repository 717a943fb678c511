/**
 * Receiving the body of a part or an append, for every driver: each chunk is counted, hashed and
 * handed to the driver's sink (a `PartWriter`) before the next is read, so when the body breaks off
 * (the connection was cut) the sink holds exactly the bytes that were hashed and counted, and an
 * append can keep them as a shorter part.
 */
import { createHash, type Hash } from 'node:crypto'
import { checksumMismatch, StorageError } from '../errors.js'
import { checkTotal, sizeCap, type SizeRules } from './rules.js'
import { bodyChunks } from '../streams.js'
import type { AppendPartOptions, ChecksumAlgorithm } from '../types.js'

export interface ReceivedBody {
  size: number
  /** Hex sha256 of the bytes received, after those already in `hash` when it was given. */
  sha256: string
  /** That sha256 still running, to continue with the bytes of a later body. */
  hash: Hash
  /** Hex digest in the algorithm of `expectedChecksum`, when one was asked for. */
  checksum?: string
  /** Why the body broke off part-way; undefined when it ended normally. */
  broken?: StorageError
}

/**
 * Reads `body` to its end or until it breaks, passing every chunk to `sink`. More than `maxBytes`
 * throws `payload_too_large` (or `tooLarge()`; the sink has then received a prefix the caller must
 * discard); errors of the sink propagate as they are.
 *
 * `hash`, when given, is a sha256 to continue (a part being extended): it is updated with every
 * chunk, and `sha256` is its digest; the checksum is still of this body alone.
 */
export async function receiveBody(
  body: ReadableStream<Uint8Array>,
  sink: (chunk: Uint8Array) => Promise<void>,
  options: { maxBytes: number; checksum?: ChecksumAlgorithm; hash?: Hash; tooLarge?: () => StorageError },
): Promise<ReceivedBody> {
  const sha256 = options.hash ?? createHash('sha256')
  const ownSha256 = options.checksum === 'sha256' && options.hash === undefined
  const other: Hash | undefined = options.checksum && !ownSha256 ? createHash(options.checksum) : undefined
  let size = 0
  let broken: StorageError | undefined
  const chunks = bodyChunks(body)
  try {
    for (;;) {
      let next: IteratorResult<Uint8Array>
      try {
        next = await chunks.next()
      } catch (e) {
        broken = e as StorageError // bodyChunks reports every failure of the body as a StorageError
        break
      }
      if (next.done) break
      const chunk = next.value
      size += chunk.length
      if (size > options.maxBytes) {
        if (options.tooLarge) throw options.tooLarge()
        throw new StorageError('payload_too_large', `the body is larger than the ${options.maxBytes} bytes the upload has room for`, {
          details: { limit: options.maxBytes },
        })
      }
      sha256.update(chunk)
      other?.update(chunk)
      await sink(chunk)
    }
  } finally {
    await chunks.return(undefined) // lets go of the body when a limit or the sink stopped early
  }
  const hex = sha256.copy().digest('hex')
  return {
    size,
    sha256: hex,
    hash: sha256,
    ...(options.checksum ? { checksum: other ? other.digest('hex') : hex } : {}),
    ...(broken ? { broken } : {}),
  }
}

/**
 * Room for one append at `offset`, the limit while streaming (the check at commit is `checkAppend`);
 * an announced size that cannot fit is refused before any byte is read.
 */
export function appendRoom(rules: SizeRules, offset: number, expectedSize?: number): number {
  if (expectedSize !== undefined) checkTotal(rules, offset + expectedSize)
  return Math.max(0, sizeCap(rules) - offset)
}

/**
 * What of a received body may be kept: all of it when it ended normally and its checksum matches;
 * the prefix of a broken body only with `keepPartial` and no checksum. Throws otherwise (the body's
 * own error, or `checksum_mismatch`), and the caller discards the bytes.
 */
export function acceptReceived(received: ReceivedBody, options: AppendPartOptions): { partial: boolean } {
  if (received.broken) {
    if (options.keepPartial && !options.expectedChecksum) return { partial: true }
    throw received.broken
  }
  const expected = options.expectedChecksum
  if (expected && expected.hex !== received.checksum) {
    throw checksumMismatch(expected.hex, received.checksum!, expected.algorithm)
  }
  return { partial: false }
}
