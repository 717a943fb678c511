/** Reading a file back every way the API offers, in the terms of versions.ts. */
import { sha256 } from '../helpers/streams.js'
import { canonical, type Seen } from './versions.js'

const TIMEOUT_MS = 30_000

export interface FileInfoJson {
  type: string
  path: string
  size: number
  sha256: string
  etag: string
  contentType: string
  metadata: Record<string, unknown>
}

export const seenInInfo = (info: FileInfoJson): Seen => ({
  path: info.path,
  sha256: info.sha256,
  size: info.size,
  etag: info.etag,
  contentType: info.contentType,
  metadata: canonical(info.metadata),
})

/** GET download: the body's own sha256 and length, and the headers sent with it. */
export async function readDownload(api: string, store: string, path: string): Promise<{ status: number; seen?: Seen; problems: string[] }> {
  const res = await fetch(`${api}/${store}/download/${path}`, { signal: AbortSignal.timeout(TIMEOUT_MS) })
  if (res.status !== 200) {
    await res.body?.cancel()
    return { status: res.status, problems: [] }
  }
  const body = Buffer.from(await res.arrayBuffer())
  const problems: string[] = []
  const header = (name: string) => res.headers.get(name)
  if (Number(header('content-length')) !== body.length) problems.push(`download of ${path}: Content-Length ${header('content-length')} but ${body.length} bytes came`)
  if (header('x-content-sha256') !== sha256(body)) problems.push(`download of ${path}: X-Content-SHA256 ${header('x-content-sha256')} is not the sha256 of the bytes sent`)
  if (header('etag') !== `"${sha256(body)}"`) problems.push(`download of ${path}: ETag ${header('etag')} is not the bytes' sha256`)
  return { status: 200, seen: { path, sha256: sha256(body), size: body.length, contentType: header('content-type') }, problems }
}

/** HEAD download: only headers; the version is the one its X-Content-SHA256 names. */
export async function readHead(api: string, store: string, path: string): Promise<{ status: number; seen?: Seen }> {
  const res = await fetch(`${api}/${store}/download/${path}`, { method: 'HEAD', signal: AbortSignal.timeout(TIMEOUT_MS) })
  if (res.status !== 200) return { status: res.status }
  const h = (name: string) => res.headers.get(name)
  return {
    status: 200,
    seen: { path, sha256: h('x-content-sha256'), size: Number(h('content-length')), etag: h('etag'), contentType: h('content-type') },
  }
}

export async function readInfo(api: string, store: string, path: string): Promise<{ status: number; info?: FileInfoJson }> {
  const res = await fetch(`${api}/${store}/info/${path}`, { signal: AbortSignal.timeout(TIMEOUT_MS) })
  if (res.status !== 200) {
    await res.body?.cancel()
    return { status: res.status }
  }
  return { status: 200, info: (await res.json()) as FileInfoJson }
}

/** Every entry of a recursive listing of `dir` (all pages, bounded). */
export async function listAll(api: string, store: string, dir: string): Promise<{ status: number; entries: FileInfoJson[] }> {
  const entries: FileInfoJson[] = []
  let cursor: string | null = null
  for (let page = 0; page < 100; page++) {
    const query = new URLSearchParams({ recursive: 'true', limit: '1000', ...(cursor ? { cursor } : {}) })
    const res = await fetch(`${api}/${store}/list/${dir}?${query}`, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    if (res.status !== 200) {
      await res.body?.cancel()
      return { status: res.status, entries }
    }
    const body = (await res.json()) as { entries: FileInfoJson[]; nextCursor: string | null }
    entries.push(...body.entries)
    cursor = body.nextCursor
    if (!cursor) break
  }
  return { status: 200, entries }
}
