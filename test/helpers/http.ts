/**
 * HTTP helpers for tests: a raw request (the path is sent exactly as written, unlike fetch, which
 * resolves `..` and `%2e%2e` before sending), and JSON error assertions.
 */
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { expect } from 'vitest'

export interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  json<T = unknown>(): T
}

export function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer | string; timeoutMs?: number } = {},
): Promise<RawResponse> {
  const url = new URL(baseUrl)
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port, method, path, headers: options.headers, timeout: options.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const body = Buffer.concat(chunks)
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: <T>() => JSON.parse(body.toString('utf8')) as T,
          })
        })
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    // A Buffer, not a string: Node writes the header block in the first chunk's encoding, and
    // header values must go out as Latin-1 bytes (as curl sends them), not re-encoded as UTF-8.
    req.end(options.body === undefined ? undefined : Buffer.from(options.body))
  })
}

interface ErrorJson {
  error: { code: string; message: string; details?: unknown }
}

/** Asserts a SPEC 3.5 error: the status, JSON content type, and the code. */
export async function expectError(response: Response | RawResponse, status: number, code: string): Promise<ErrorJson> {
  const isFetch = response instanceof Response
  const contentType = isFetch ? response.headers.get('content-type') : String(response.headers['content-type'])
  const body = (isFetch ? await response.json() : response.json()) as ErrorJson
  expect({ status: response.status, code: body.error?.code }).toEqual({ status, code })
  expect(contentType).toMatch(/^application\/json/)
  expect(typeof body.error.message).toBe('string')
  expect(body.error.message.length).toBeGreaterThan(0)
  return body
}

/**
 * A request written by hand on its own connection (head, then as much of the body as given), left
 * open: the test decides when to send more, read the answer, or cut the connection.
 */
export async function openRawRequest(origin: string, head: string, body: Buffer | string = ''): Promise<Socket> {
  const url = new URL(origin)
  const socket = connect(Number(url.port), url.hostname)
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  socket.on('error', () => {}) // a cut the server makes is what some tests wait for
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]))
  return socket
}

/** Everything a raw connection receives until the server closes it (or `timeoutMs` passes). */
export function readUntilClosed(socket: Socket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    let received = ''
    socket.on('data', (c: Buffer) => (received += c.toString('latin1')))
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(received)
    }, timeoutMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(received)
    })
  })
}
