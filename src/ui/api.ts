/**
 * The file API as the page calls it: same origin, the API's base beside the page, the user's token
 * (kept in sessionStorage: gone with the tab) in `Authorization`, and the API's JSON errors
 * (SPEC 3.5) turned into ApiError.
 */

/** `/filestorage/v1/`: the page is served at `{base}ui`, wherever the handlers are mounted. */
export const API_BASE = new URL('.', location.href)

const TOKEN_KEY = 'filestorage.token'

export const token = {
  get: (): string => sessionStorage.getItem(TOKEN_KEY) ?? '',
  set(value: string): void {
    if (value) sessionStorage.setItem(TOKEN_KEY, value)
    else sessionStorage.removeItem(TOKEN_KEY)
  },
}

export function authHeaders(): Record<string, string> {
  const t = token.get()
  return t ? { Authorization: `Bearer ${t}` } : {}
}

/** An answer of the API that is not a success: its status and its JSON error (or what stood in for it). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** What the page was doing, e.g. `delete disk:a/b.txt`. */
    readonly action: string,
  ) {
    super(message)
  }
}

export async function errorOf(res: Response, action: string): Promise<ApiError> {
  const text = await res.text().catch(() => '')
  return parseError(res.status, text, action)
}

/** The API's `{ error: { code, message } }`, or the status alone when the body is something else. */
export function parseError(status: number, body: string, action: string): ApiError {
  try {
    const { error } = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } }
    if (error && typeof error.code === 'string' && typeof error.message === 'string') return new ApiError(status, error.code, error.message, action)
  } catch {
    // not JSON: a proxy's page, or nothing
  }
  return new ApiError(status, status === 0 ? 'network_error' : `http_${status}`, body.slice(0, 200) || 'no answer from the service', action)
}

/** Each segment percent-encoded: names may hold `#`, `?`, `%` and spaces. */
export const encodePath = (path: string): string => path.split('/').map(encodeURIComponent).join('/')

export async function call(method: string, route: string, action: string, init: RequestInit = {}): Promise<Response> {
  let res: Response
  try {
    res = await fetch(new URL(route, API_BASE), { ...init, method, headers: { ...authHeaders(), ...(init.headers as Record<string, string>) } })
  } catch (e) {
    throw new ApiError(0, 'network_error', `the service did not answer (${(e as Error).message})`, action)
  }
  if (!res.ok) throw await errorOf(res, action)
  return res
}

export interface FileEntry {
  type: 'file'
  name: string
  path: string
  size: number
  contentType: string
  modified: string
}
export interface FolderEntry {
  type: 'directory'
  name: string
  path: string
}
export type Entry = FileEntry | FolderEntry

/** At most this many entries of one folder are shown (pages of 1000 are fetched until then). */
export const MAX_ENTRIES = 10_000

export async function listFolder(store: string, dir: string): Promise<{ entries: Entry[]; truncated: boolean }> {
  const entries: Entry[] = []
  let cursor: string | undefined
  do {
    const query = new URLSearchParams({ limit: '1000', ...(cursor ? { cursor } : {}) })
    const res = await call('GET', `${encodeURIComponent(store)}/list/${encodePath(dir)}?${query}`, `list ${store}:${dir || '/'}`)
    const page = (await res.json()) as { entries: Entry[]; nextCursor?: string | null }
    entries.push(...page.entries)
    cursor = page.nextCursor ?? undefined
  } while (cursor && entries.length < MAX_ENTRIES)
  return { entries, truncated: Boolean(cursor) }
}

/** The stores the service serves, from the public health check. */
export async function storeNames(): Promise<string[]> {
  const res = await fetch(new URL('check', API_BASE))
  const body = (await res.json().catch(() => ({}))) as { stores?: Record<string, unknown> }
  const names = Object.keys(body.stores ?? {})
  // Without a store there is nothing to list: say so rather than ask for a listing outside the API.
  if (names.length === 0) throw new Error(`GET check answered ${res.status} without the names of the stores`)
  return names
}

export async function move(store: string, from: string, to: string): Promise<void> {
  await call('POST', `${encodeURIComponent(store)}/move/${encodePath(from)}`, `move ${store}:${from} to ${to}`, {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ to }),
  })
}

export async function remove(store: string, path: string, folder: boolean): Promise<void> {
  await call('DELETE', `${encodeURIComponent(store)}/delete/${encodePath(path)}${folder ? '?recursive=true' : ''}`, `delete ${store}:${path}`)
}

/** A signed download URL: the browser fetches it itself (streamed to disk), no header needed. */
export async function signedDownloadUrl(store: string, path: string): Promise<string> {
  const res = await call('POST', `${encodeURIComponent(store)}/sign/${encodePath(path)}`, `download ${store}:${path}`, {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ operation: 'download', expiresIn: 300 }),
  })
  const { url } = (await res.json()) as { url: string }
  const signed = new URL(url, API_BASE)
  signed.searchParams.set('disposition', 'attachment')
  return signed.href
}

/** The file's bytes, with the token, for a preview (small files only: the caller checks the size). */
export async function fetchFile(store: string, path: string): Promise<Blob> {
  const res = await call('GET', `${encodeURIComponent(store)}/download/${encodePath(path)}`, `preview ${store}:${path}`)
  return res.blob()
}
