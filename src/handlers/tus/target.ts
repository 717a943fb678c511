/**
 * Where a tus upload lands, from its `Upload-Metadata`: the keys tus clients send by convention
 * (`filename` or `name`, `filetype` or `type`, as tus-js-client and Uppy do) plus our own `path` and
 * `dir`. Every other key becomes the file's metadata, as `X-File-Metadata` would on a PUT.
 *
 *   path                 the whole path inside the store (wins over dir and filename)
 *   dir                  a folder, with filename (or name) as the file's name in it
 *   filename / name      the file's name; without one, a random name (32 hex digits)
 *   filetype / type      the content type (guessed from the name when absent or generic); a media type
 *
 * An upload created through a signed URL goes to the path that was signed: `fixedPath` wins over
 * every placement key.
 */
import { joinPath, parseName, parsePath, ROOT, validateMetadata } from '../../storage/index.js'
import { parseMediaType } from '../media-type.js'

export interface UploadTarget {
  path: string
  contentType?: string
  metadata: Record<string, unknown>
}

const PLACEMENT_KEYS = new Set(['path', 'dir', 'filename', 'name', 'filetype', 'type'])

export function uploadTarget(meta: Map<string, string | null>, defaultName: string, fixedPath?: string): UploadTarget {
  const given = (key: string) => meta.get(key) || undefined
  const name = given('filename') ?? given('name')
  const full = fixedPath ?? given('path')
  const path = full !== undefined
    ? parsePath(full)
    : joinPath(parsePath(given('dir') ?? ROOT, { folder: true }), parseName(name ?? defaultName))
  const filetype = given('filetype') ?? given('type')
  const contentType = filetype ? parseMediaType(filetype, 'the filetype in Upload-Metadata') : undefined
  const metadata = validateMetadata(Object.fromEntries([...meta].filter(([key]) => !PLACEMENT_KEYS.has(key))))
  return { path, metadata, ...(contentType ? { contentType } : {}) }
}
