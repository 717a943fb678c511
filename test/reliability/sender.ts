/**
 * A request whose body goes out in chunks, counting the bytes handed to the kernel, so that a
 * test can kill the server at a chosen point of the upload and know how much had been sent.
 */
import { request } from 'node:http'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export interface Sending {
  /** The answer, or undefined when the connection broke first (the server was killed). */
  answer: Promise<Answer | undefined>
  /** Body bytes handed to the kernel so far. */
  handed(): number
}

const CHUNK = 256 * 1024

export function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  onProgress: (handed: number) => void = () => {},
  timeoutMs = 120_000,
): Sending {
  let handed = 0
  const answer = new Promise<Answer | undefined>((resolve) => {
    const req = request(url, { method, headers: { ...headers, 'Content-Length': String(body?.length ?? 0) }, agent: false, timeout: timeoutMs })
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', () => resolve(undefined))
    })
    req.on('error', () => resolve(undefined))
    req.on('timeout', () => req.destroy(new Error('timed out')))
    const pump = async () => {
      for (let at = 0; body && at < body.length && !req.destroyed; at += CHUNK) {
        const chunk = body.subarray(at, at + CHUNK)
        const ok = await new Promise<boolean>((done) => req.write(chunk, (e) => done(!e)))
        if (!ok) return
        handed += chunk.length
        onProgress(handed)
      }
      if (!req.destroyed) req.end()
    }
    void pump()
  })
  return { answer, handed: () => handed }
}

export const json = <T>(a: Answer): T => JSON.parse(a.body.toString('utf8')) as T
