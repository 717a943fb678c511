/**
 * Large disk-store downloads sent by Bun itself: `Bun.file` on the name the store gives for the very
 * version the handler described (`StorageDriver.localVersion`, the name nginx's X-Accel-Redirect
 * uses), which Bun sends with sendfile(2), no byte passing through JavaScript. The handler decides
 * everything as for any download (authorization, conditionals, the range, the headers); the
 * handlers know nothing of Bun (`HandlerDeps.localFiles`).
 *
 * What Bun adds to a file it sends, and how it is kept out:
 * - For a type it does not show itself (`application/octet-stream`, `application/pdf`...), Bun adds
 *   `Content-Disposition: filename="<the file's base name>"` (a malformed header, without its type,
 *   naming the store's internal file). An answer without a disposition gets `inline`, which means
 *   what no header means (RFC 6266).
 * - For an answer of the whole file (200), Bun judges the request's Range and If-Range itself,
 *   against the answer's ETag and Last-Modified. It sends the whole file where the handler does
 *   (several ranges, a malformed one, a stale If-Range; test/adapters/bun-downloads.test.ts), and
 *   a range the handler answers goes as a slice with 206, which Bun leaves as it is.
 *
 * Sending the disk store's large files this way also keeps their Content-Length: Bun drops a
 * Content-Length set on an answer whose body is a stream, and sends it chunked (Bun issue 10507).
 */
import { join, resolve } from 'node:path'
import type { LocalFileSender } from '../../handlers/index.js'
import type { Config } from '../service/config.js'
import { bun } from './bun-api.js'

/**
 * What the disk store reads at once (less than 1 MiB) goes as bytes: naming a version costs a hard link
 * and a timer in the store, which sendfile pays back on large files only. Larger files the store
 * would stream.
 */
const MIN_BYTES = 1024 * 1024

/** Sends the `disk` store's large files with Bun.file; other stores keep their streams. */
export function bunLocalFiles(config: Config): LocalFileSender {
  const roots: Record<string, string> = { disk: resolve(config.STORAGE_DIR) }
  return {
    stores: Object.keys(roots),
    minBytes: MIN_BYTES,
    send({ store, name, range, status, headers }) {
      const file = bun().file(join(roots[store]!, name))
      headers['Content-Disposition'] ??= 'inline'
      return new Response(range ? file.slice(range.start, range.end + 1) : file, { status, headers })
    },
  }
}
