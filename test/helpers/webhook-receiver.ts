/**
 * A webhook endpoint on loopback for tests: every request is verified with the reference Standard
 * Webhooks library (`standardwebhooks` from npm), never with the service's own code, once for each
 * secret it is given (while keys rotate, a request must verify with either). It records what it
 * took and answers what the test tells it to (a status, `Retry-After`, a delay, or no answer).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'

export interface Delivery {
  id: string
  /** `webhook-timestamp` (seconds). */
  timestamp: number
  /** When it arrived (ms). */
  at: number
  type: string
  data: Record<string, unknown> & { path: string; store: string }
  body: string
}

export interface Attempt {
  id: string
  at: number
  status: number
}

/** What to answer one request (`n`: how many requests came before it). */
export type Answer = (delivery: Delivery, n: number) => { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'hang'

export interface Receiver {
  url: string
  /** Requests answered 2xx, in arrival order (duplicates included). */
  readonly taken: Delivery[]
  /** Every request, with the status it got. */
  readonly attempts: Attempt[]
  /** Requests that failed verification, with why: must stay empty. */
  readonly invalid: string[]
  answer: Answer
  /** Resolves once `done()` holds, checked as requests arrive (fails after `timeoutMs`). */
  until(done: () => boolean, timeoutMs: number, what?: string): Promise<void>
  /** Stops listening (connections are refused, as by a receiver that is down) until `resume`. */
  pause(): Promise<void>
  /** Listens again, on the same port. */
  resume(): Promise<void>
  close(): Promise<void>
}

export const TAKE: Answer = () => ({ status: 204 })

export async function startReceiver(secrets: string[], answer: Answer = TAKE): Promise<Receiver> {
  const verifiers = secrets.map((s) => new Webhook(s))
  const waiters = new Set<() => void>()
  const hanging = new Set<ServerResponse>()
  let n = 0
  const receiver = {
    url: '',
    taken: [] as Delivery[],
    attempts: [] as Attempt[],
    invalid: [] as string[],
    answer,
  } as Receiver
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const headers = req.headers as Record<string, string>
      let payload: { type: string; data: Delivery['data'] }
      try {
        payload = verifiers.map((v) => v.verify(body, headers))[0] as typeof payload
      } catch (e) {
        receiver.invalid.push(`${headers['webhook-id']}: ${(e as Error).message}`)
        res.writeHead(400).end()
        return
      }
      const delivery: Delivery = {
        id: headers['webhook-id']!,
        timestamp: Number(headers['webhook-timestamp']),
        at: Date.now(),
        type: payload.type,
        data: payload.data,
        body,
      }
      const told = receiver.answer(delivery, n++)
      if (told === 'hang') {
        hanging.add(res)
        return
      }
      const reply = () => {
        receiver.attempts.push({ id: delivery.id, at: delivery.at, status: told.status })
        if (told.status >= 200 && told.status < 300) receiver.taken.push(delivery)
        res.writeHead(told.status, told.headers ?? {}).end(told.body ?? '')
        for (const wake of waiters) wake()
      }
      if (told.delayMs) setTimeout(reply, told.delayMs)
      else reply()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  receiver.url = `http://127.0.0.1:${port}/hook`
  const stop = async () => {
    for (const res of hanging) res.destroy()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  receiver.pause = stop
  receiver.resume = () => new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()))
  receiver.until = (done, timeoutMs, what = 'the deliveries') =>
    new Promise<void>((resolve, reject) => {
      if (done()) return resolve()
      const check = () => {
        if (!done()) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve()
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`${what} did not arrive within ${timeoutMs} ms (${receiver.taken.length} taken, ${receiver.attempts.length} tries)`))
      }, timeoutMs)
      waiters.add(check)
    })
  receiver.close = async () => {
    if (server.listening) await stop()
  }
  return receiver
}

/** A fresh `whsec_` secret. */
export const newSecret = (): string => `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')}`
