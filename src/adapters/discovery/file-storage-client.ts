/**
 * A typed client of the file API (SPEC 3) for other services, on plain fetch. Requests go to an
 * instance found by name in Consul (round robin through a ServiceResolver), or to a fixed origin
 * such as the nginx in front of the fleet.
 *
 * When an instance cannot be reached, the request goes to the next one (with a fixed origin: again
 * to it), but only where that cannot do anything twice: a refused connection means nothing was
 * sent, so any request whose body can be sent again is retried; a connection lost before the answer
 * is retried for GET and HEAD only, which also covers a kept-alive connection that the server (nginx
 * reloading, say) closed just as the request went out (RFC 9112, 9.3.1). A streamed body cannot be
 * sent twice and is never retried.
 *
 * A whole-file download whose body is cut (its instance died mid-stream) goes on where it stopped:
 * the client asks for the rest (`Range`, with `If-Range` on the ETag, which every instance derives
 * from the content) from whichever instance answers, so the caller reads one unbroken body.
 */
import { DEFAULT_BASE_PATH } from '../../handlers/base-path.js'
import type { EntryInfo, FileInfo } from '../../storage/types.js'
import { ServiceResolver, type ServiceResolverOptions } from './service-resolver.js'

export interface FileStorageClientOptions {
  /**
   * Where requests go: a resolver, the options to make one (the client then owns it, and `close()`
   * ends its watch), or a fixed origin such as `http://nginx:8080`.
   */
  target: ServiceResolver | ServiceResolverOptions | string
  /** Where the API is mounted on the instances; default `/filestorage/v1`. */
  basePath?: string
  /**
   * Sent as `Authorization: Bearer <token>` with every request: a token, or a function that returns
   * one, asked before every request (so that it can refresh one that expires).
   */
  token?: string | (() => string | Promise<string>)
  /** Attempts of one request when no answer comes back (see above); default 3. */
  attempts?: number
  fetch?: typeof fetch
  /** Told of every attempt that failed and is being made again: for logs and metrics. */
  onRetry?: (event: RetryEvent) => void
}

export interface RetryEvent {
  /** `retry`: the request again; `resume`: the rest of a download whose body was cut. */
  kind: 'retry' | 'resume'
  method: string
  route: string
  error: unknown
}

/** A failed request: the API's JSON error (SPEC 3.5), or `store_unavailable` when no instance answered. */
export class FileStorageError extends Error {
  override name = 'FileStorageError'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

export type UploadBody = string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>

export interface UploadOptions {
  contentType?: string
  metadata?: Record<string, unknown>
  /** Hex sha256 the body must have (`X-Content-SHA256`). */
  sha256?: string
  /** Create only: refuse to replace an existing file (`If-None-Match: *`). */
  createOnly?: boolean
  /** Replace only this version (`If-Match`). */
  ifMatch?: string
  signal?: AbortSignal
}

export interface DownloadOptions {
  /** `bytes=0-99` and the like. */
  range?: string
  /** With `range`: the ETag the caller's bytes came from; a file changed since is answered whole (`200`). */
  ifRange?: string
  ifNoneMatch?: string
  signal?: AbortSignal
}

export interface ListOptions {
  recursive?: boolean
  limit?: number
  cursor?: string
}

export interface ListPage {
  entries: EntryInfo[]
  nextCursor: string | null
}

export interface MoveOptions {
  to: string
  toStore?: string
  overwrite?: boolean
  ifMatch?: string
}

export interface SignOptions {
  /** What the URL lets its holder do: download the file, upload it (`PUT`), or upload it through tus. */
  operation: 'download' | 'upload' | 'tus'
  /** Lifetime in seconds; the service's default when absent. */
  expiresIn?: number
  /** Uploads: the largest body the URL accepts. */
  maxBytes?: number
  /** Uploads: the content type the file must be sent with. */
  contentType?: string
}

export interface SignedUrl {
  url: string
  method: string
  expiresAt: string
}

export interface CheckReport {
  status: 'ok' | 'degraded' | 'unavailable'
  /** `driver`, `writable`, `latencyMs` and `message` only for a caller who may read in the store. */
  stores: Record<string, { status: 'up' | 'degraded' | 'down'; driver?: string; writable?: boolean; latencyMs?: number; message?: string }>
}

interface RequestSpec {
  method: string
  route: string
  query?: Record<string, string | number | boolean | undefined>
  headers?: Record<string, string | undefined>
  body?: UploadBody
  signal?: AbortSignal | undefined
  /** Statuses that are answers rather than errors. */
  accept: number[]
}

export class FileStorageClient {
  readonly #target: ServiceResolver | string
  readonly #ownsResolver: boolean
  readonly #basePath: string
  readonly #attempts: number
  readonly #fetch: typeof fetch
  readonly #onRetry: (event: RetryEvent) => void
  readonly #token: FileStorageClientOptions['token']

  constructor(options: FileStorageClientOptions) {
    const { target } = options
    this.#ownsResolver = typeof target === 'object' && !(target instanceof ServiceResolver)
    this.#target = this.#ownsResolver ? new ServiceResolver(target as ServiceResolverOptions) : (target as ServiceResolver | string)
    this.#basePath = options.basePath ?? DEFAULT_BASE_PATH
    this.#attempts = Math.max(1, options.attempts ?? 3)
    this.#fetch = options.fetch ?? globalThis.fetch
    this.#onRetry = options.onRetry ?? (() => {})
    this.#token = options.token
  }

  /**
   * The API's base URL on the instance the next request would go to (`http://host:port/filestorage/v1`),
   * for clients of protocols this one does not speak itself, such as tus.
   */
  async baseUrl(): Promise<string> {
    return `${await this.#origin()}${this.#basePath}`
  }

  /** Streams `body` into the file at `path`; `created` is false when it replaced a file. */
  async upload(store: string, path: string, body: UploadBody, options: UploadOptions = {}): Promise<{ file: FileInfo; created: boolean }> {
    const response = await this.#send({
      method: 'PUT',
      route: `/${seg(store)}/upload/${encodePath(path)}`,
      headers: {
        'Content-Type': options.contentType,
        'X-File-Metadata': options.metadata ? JSON.stringify(options.metadata) : undefined,
        'X-Content-SHA256': options.sha256,
        'If-None-Match': options.createOnly ? '*' : undefined,
        'If-Match': options.ifMatch,
      },
      body,
      signal: options.signal,
      accept: [200, 201],
    })
    return { file: (await response.json()) as FileInfo, created: response.status === 201 }
  }

  /**
   * The download response (200, 206 for a range, 304 when `ifNoneMatch` matches); read its body as a
   * stream. A body that is cut resumes from another instance (see above), for a range as for the whole file.
   */
  async download(store: string, path: string, options: DownloadOptions = {}): Promise<Response> {
    const route = `/${seg(store)}/download/${encodePath(path)}`
    const response = await this.#send({
      method: 'GET',
      route,
      headers: { Range: options.range, 'If-Range': options.range ? options.ifRange : undefined, 'If-None-Match': options.ifNoneMatch },
      signal: options.signal,
      accept: [200, 206, 304],
    })
    const etag = response.headers.get('etag')
    const span = bodySpan(response)
    if (!span || !response.body || !etag?.startsWith('"')) return response
    const body = this.#resumable(response.body, { route, etag, ...span, signal: options.signal })
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }

  async info(store: string, path: string): Promise<FileInfo> {
    const response = await this.#send({ method: 'GET', route: `/${seg(store)}/info/${encodePath(path)}`, accept: [200] })
    return (await response.json()) as FileInfo
  }

  async list(store: string, dir = '', options: ListOptions = {}): Promise<ListPage> {
    const response = await this.#send({
      method: 'GET',
      route: `/${seg(store)}/list/${encodePath(dir)}`,
      query: { recursive: options.recursive || undefined, limit: options.limit, cursor: options.cursor },
      accept: [200],
    })
    return (await response.json()) as ListPage
  }

  async move(store: string, path: string, options: MoveOptions): Promise<EntryInfo> {
    const { ifMatch, ...move } = options
    const response = await this.#send({
      method: 'POST',
      route: `/${seg(store)}/move/${encodePath(path)}`,
      headers: { 'Content-Type': 'application/json', 'If-Match': ifMatch },
      body: JSON.stringify(move),
      accept: [200],
    })
    return (await response.json()) as EntryInfo
  }

  async delete(store: string, path: string, options: { recursive?: boolean; ifMatch?: string } = {}): Promise<void> {
    await this.#send({
      method: 'DELETE',
      route: `/${seg(store)}/delete/${encodePath(path)}`,
      query: { recursive: options.recursive || undefined },
      headers: { 'If-Match': options.ifMatch },
      accept: [204],
    })
  }

  /** The health of one instance and its stores; `unavailable` is an answer, not an error. */
  async check(): Promise<CheckReport> {
    const response = await this.#send({ method: 'GET', route: '/check', accept: [200, 503] })
    return (await response.json()) as CheckReport
  }

  /** Ends the watch of a resolver this client made itself. */
  close(): void {
    if (this.#ownsResolver) (this.#target as ServiceResolver).close()
  }

  async sign(store: string, path: string, options: SignOptions): Promise<SignedUrl> {
    const response = await this.#send({
      method: 'POST',
      route: `/${seg(store)}/sign/${encodePath(path)}`,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(options),
      accept: [200, 201],
    })
    return (await response.json()) as SignedUrl
  }

  /**
   * `first` (the bytes `start` to `start + size - 1` of the file), continued with ranged requests for
   * the rest whenever it breaks off.
   */
  #resumable(
    first: ReadableStream<Uint8Array>,
    file: { route: string; etag: string; start: number; size: number; signal: AbortSignal | undefined },
  ): ReadableStream<Uint8Array> {
    let reader = first.getReader()
    let received = 0
    let resumes = 0
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          try {
            const { done, value } = await reader.read()
            if (done) {
              if (received < file.size) throw new Error(`the body ended after ${received} of ${file.size} bytes`)
              return controller.close()
            }
            received += value.length
            return controller.enqueue(value)
          } catch (error) {
            if (file.signal?.aborted || resumes++ >= this.#attempts) throw error
            this.#onRetry({ kind: 'resume', method: 'GET', route: file.route, error })
            const rest = await this.#send({
              method: 'GET',
              route: file.route,
              // If the file changed meanwhile, If-Range makes the answer a whole 200, refused here.
              headers: { Range: `bytes=${file.start + received}-${file.start + file.size - 1}`, 'If-Range': file.etag },
              signal: file.signal,
              accept: [206],
            })
            reader = rest.body!.getReader()
          }
        }
      },
      cancel: (reason) => reader.cancel(reason),
    })
  }

  async #send(spec: RequestSpec): Promise<Response> {
    const replayable = !(spec.body instanceof ReadableStream)
    const headers = Object.fromEntries(Object.entries(spec.headers ?? {}).filter((e): e is [string, string] => e[1] !== undefined))
    const query = new URLSearchParams()
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) query.set(k, String(v))
    const suffix = `${this.#basePath}${spec.route}${query.size ? `?${query}` : ''}`

    let failure: unknown
    for (let attempt = 1; attempt <= this.#attempts; attempt++) {
      const token = typeof this.#token === 'function' ? await this.#token() : this.#token
      if (token) headers.Authorization = `Bearer ${token}`
      const origin = await this.#origin()
      let response: Response
      try {
        response = await this.#fetch(`${origin}${suffix}`, {
          method: spec.method,
          headers,
          ...(spec.body !== undefined ? { body: spec.body as RequestInit['body'] } : {}),
          ...(spec.body instanceof ReadableStream ? { duplex: 'half' } : {}),
          ...(spec.signal ? { signal: spec.signal } : {}),
        } as RequestInit)
      } catch (e) {
        failure = e
        if (spec.signal?.aborted || !mayRetry(e, spec.method, replayable) || attempt === this.#attempts) break
        this.#onRetry({ kind: 'retry', method: spec.method, route: spec.route, error: e })
        continue
      }
      if (spec.accept.includes(response.status)) return response
      if (response.status === 200 && spec.headers?.['If-Range']) {
        await response.body?.cancel()
        throw new FileStorageError(412, 'precondition_failed', 'the file changed while it was being downloaded')
      }
      throw await errorOf(response)
    }
    if (spec.signal?.aborted) throw failure
    throw new FileStorageError(503, 'store_unavailable', `no instance answered: ${networkReason(failure)}`, undefined, { cause: failure })
  }

  async #origin(): Promise<string> {
    return typeof this.#target === 'string' ? this.#target.replace(/\/$/, '') : (await this.#target.pick()).origin
  }
}

export function createFileStorageClient(options: FileStorageClientOptions): FileStorageClient {
  return new FileStorageClient(options)
}

/** Connection errors that mean the request never reached the instance. */
const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])

function mayRetry(error: unknown, method: string, replayable: boolean): boolean {
  if (!replayable) return false
  if (NOT_SENT.has(networkCode(error) ?? '')) return true
  return method === 'GET' || method === 'HEAD'
}

function networkCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: string; errors?: { code?: string }[] } }).cause
  return cause?.code ?? cause?.errors?.[0]?.code
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: { message?: string } }).cause
  return networkCode(error) ?? cause?.message ?? (error as Error)?.message ?? String(error)
}

async function errorOf(response: Response): Promise<FileStorageError> {
  const text = await response.text().catch(() => '')
  try {
    const { error } = JSON.parse(text) as { error: { code: string; message: string; details?: unknown } }
    if (error?.code) return new FileStorageError(response.status, error.code, error.message, error.details)
  } catch {
    // not the API's JSON: a proxy's page, say
  }
  const code = response.status >= 502 && response.status <= 504 ? 'store_unavailable' : `http_${response.status}`
  return new FileStorageError(response.status, code, `${response.status} ${response.statusText}`.trim())
}

/**
 * Where a download's body lies in the file: all of it (200), or the range a 206 names; undefined when
 * the headers do not say (the body then cannot be resumed).
 */
function bodySpan(response: Response): { start: number; size: number } | undefined {
  const size = Number(response.headers.get('content-length') ?? NaN)
  if (!Number.isSafeInteger(size)) return undefined
  if (response.status === 200) return { start: 0, size }
  const range = /^bytes (\d+)-(\d+)\//.exec(response.headers.get('content-range') ?? '')
  if (response.status !== 206 || !range || Number(range[2]) - Number(range[1]) + 1 !== size) return undefined
  return { start: Number(range[1]), size }
}

const seg = (s: string) => encodeURIComponent(s)
const encodePath = (path: string) => path.split('/').map(seg).join('/')
