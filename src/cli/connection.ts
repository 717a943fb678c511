/**
 * Which service the CLI talks to, and as whom: a fixed URL (`--url`, `FILESTORAGE_URL`), else the
 * healthy instances of a service in Consul (`--consul`, `CONSUL_HTTP_ADDR`, with `--service`), else
 * `http://localhost:8081` (what `npm start` serves). The token goes out as `Authorization: Bearer`.
 */
import { DEFAULT_BASE_PATH } from '../handlers/base-path.js'
import { FileStorageClient } from '../adapters/discovery/index.js'
import { usageError } from './errors.js'

export const DEFAULT_URL = 'http://localhost:8081'

export interface ConnectionOptions {
  url?: string
  consul?: string
  service: string
  token?: string
  consulToken?: string
}

export interface Connection {
  client: FileStorageClient
  /** Names the target the same way every run (the URL, or the Consul service): part of the keys of resumable transfers. */
  identity: string
  token: string | undefined
}

export function connect(options: ConnectionOptions): Connection {
  const token = options.token || undefined
  if (options.url || !options.consul) {
    const origin = originOf(options.url || DEFAULT_URL)
    return { client: new FileStorageClient({ target: origin, token }), identity: origin, token }
  }
  const client = new FileStorageClient({
    // One-off queries: a command is short, and a watch would keep the process alive.
    target: { consul: options.consul, service: options.service, watch: false, ...(options.consulToken ? { token: options.consulToken } : {}) },
    token,
  })
  return { client, identity: `consul:${options.service}`, token }
}

/** The URL without the API's base path, which is accepted too (`http://host:8081/filestorage/v1`). */
function originOf(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw usageError(`"${url}" is not a URL (e.g. http://localhost:8081)`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usageError(`"${url}" is not an http(s) URL`)
  const path = parsed.pathname.replace(/\/+$/, '')
  const prefix = path.endsWith(DEFAULT_BASE_PATH) ? path.slice(0, -DEFAULT_BASE_PATH.length) : path
  return `${parsed.origin}${prefix}`
}
