/**
 * Routing one app into another without wrapping every handler once more.
 *
 * Hono's `route()` wraps each handler of a sub-app that has an error handler of its own in one more
 * compose, so that the sub-app's errors are answered its way. Every handler app here answers errors
 * with `onError` (so it can be mounted alone), and so do the apps they are routed into: the file
 * API's handlers (the access check, the validators of params, query and headers, the handler) went
 * through two such wrappers each, ten async layers per request that answered errors exactly as the
 * parent's own compose does, at the level the error was thrown.
 */
import { type Env, Hono, type Schema } from 'hono'

type App<E extends Env> = Hono<E, Schema, string>
type ErrorHandler<E extends Env = Env> = Parameters<App<E>['onError']>[0]

/** An app's error handler: a field Hono keeps private in its types, though `route()` reads it. */
const errorHandlerOf = <E extends Env>(app: App<E> | Hono): ErrorHandler<E> | undefined =>
  (app as unknown as { errorHandler?: ErrorHandler<E> }).errorHandler

const HONO_ERROR_HANDLER = errorHandlerOf(new Hono())

/**
 * `parent.route(path, child)`; when both answer errors with the same function, the child's handlers
 * are routed as they are (as if it had Hono's default error handler), and the child keeps its own
 * for when it serves requests itself.
 */
export function mount<E extends Env>(parent: App<E>, path: string, child: App<E>): void {
  const own = errorHandlerOf(child)
  if (own === undefined || HONO_ERROR_HANDLER === undefined || own !== errorHandlerOf(parent)) {
    parent.route(path, child)
    return
  }
  child.onError(HONO_ERROR_HANDLER as unknown as ErrorHandler<E>)
  try {
    parent.route(path, child)
  } finally {
    child.onError(own)
  }
}
