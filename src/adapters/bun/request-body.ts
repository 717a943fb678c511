/**
 * The body of a request served by Bun.serve, with the body idle timeout: while a reader waits for
 * the next chunk and none comes for `idleTimeoutMs` (a client that stalls, a body shorter than its
 * Content-Length), the body errors with `request_timeout`, which the handler answers `408`. A body
 * that waits unread because the service is busy (backpressure: Bun stops reading the socket) is
 * never idle: only waiting on the client counts. Bun's own idle timer is off while the service
 * works on a request (server.ts), so this one decides.
 *
 * Bun's body stream has what the node adapter builds by hand (node/request-body.ts): chunks as the
 * socket delivers them, backpressure, and an error when the client cuts the connection, after the
 * chunks that came before it.
 */
import type { MiddlewareHandler } from 'hono'
import { StorageError } from '../../storage/index.js'
import type { BodyCounter } from '../service/service.js'

export interface BodyOptions {
  /** A reader waiting longer than this for the next chunk fails with `request_timeout`; 0: never. */
  idleTimeoutMs?: number
  /** Each request's byte counter, told the size of each chunk as it is read (observe.ts). */
  counter?: BodyCounter
}

/** How often the reads waiting on their clients are looked at (node:http checks its deadlines every second too). */
const SWEEP_MS = 1000

/**
 * The reads waiting on their clients, each with the moment it began to wait; a sweep every second
 * cuts those waiting longer than the idle timeout. A read costs a Map entry, not a timer of its own.
 */
export class IdleReads {
  readonly #waiting = new Map<() => void, number>()
  #sweeper: ReturnType<typeof setInterval> | undefined

  constructor(readonly idleTimeoutMs: number) {}

  /** A read began to wait; `cut` ends it if it waits too long. */
  waiting(cut: () => void): void {
    if (this.idleTimeoutMs <= 0) return
    this.#waiting.set(cut, performance.now())
    if (this.#sweeper) return
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS)
    this.#sweeper.unref()
  }

  /** The read got its chunk (or failed): no longer waiting. */
  done(cut: () => void): void {
    this.#waiting.delete(cut)
  }

  #sweep(): void {
    const now = performance.now()
    for (const [cut, since] of this.#waiting) {
      if (now - since < this.idleTimeoutMs) continue
      this.#waiting.delete(cut)
      cut()
    }
    if (this.#waiting.size === 0) {
      clearInterval(this.#sweeper)
      this.#sweeper = undefined
    }
  }
}

/** A request body behind the idle timeout of `reads`, and whether it stalled (the idle timeout cut it). */
export function idleBody(
  body: ReadableStream<Uint8Array>,
  reads: IdleReads,
  count?: (bytes: number) => void,
): { stream: ReadableStream<Uint8Array>; stalled(): boolean } {
  const reader = body.getReader()
  let stalled = false
  const timedOut = () =>
    new StorageError('request_timeout', `the request body sent nothing for ${reads.idleTimeoutMs / 1000} s`, {
      details: { idleTimeoutSeconds: reads.idleTimeoutMs / 1000 },
    })
  // The read waiting then ends (done), and the body fails with request_timeout.
  const cut = () => {
    stalled = true
    reader.cancel(timedOut()).catch(() => {})
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        reads.waiting(cut)
        let result: Awaited<ReturnType<typeof reader.read>>
        try {
          result = await reader.read()
        } catch (e) {
          return controller.error(stalled ? timedOut() : e)
        } finally {
          reads.done(cut)
        }
        if (stalled) controller.error(timedOut())
        else if (result.done) controller.close()
        else {
          count?.(result.value.byteLength)
          controller.enqueue(result.value)
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  )
  return { stream, stalled: () => stalled }
}

/** Methods whose body the fetch `Request` refuses to carry; no route reads one. */
const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD'])

/**
 * Middleware: a request with a body gets `idleBody` as its body (`c.req.raw.body`). The answer to a
 * body that stalled (408) closes the connection: Bun would keep it, waiting for the rest of that
 * body. Other answers given before the body's end (an early 413, a 401) leave the connection to Bun,
 * which reads the rest of the body, then serves the connection's next request; closing it at once
 * would reset a client still sending before it read the answer (node:http closes it after a linger
 * of 2 s, which Bun.serve cannot do).
 */
export function bunRequestBody(options: BodyOptions = {}): MiddlewareHandler {
  const reads = new IdleReads(options.idleTimeoutMs ?? 0)
  return async (c, next) => {
    const raw = c.req.raw
    if ((reads.idleTimeoutMs <= 0 && !options.counter) || METHODS_WITHOUT_BODY.has(raw.method) || raw.body === null) return next()
    const body = idleBody(raw.body, reads, options.counter?.(c))
    c.req.raw = new Request(raw.url, {
      method: raw.method,
      headers: raw.headers,
      body: body.stream,
      duplex: 'half',
    } as RequestInit)
    await next()
    if (body.stalled()) c.res.headers.set('Connection', 'close')
  }
}
