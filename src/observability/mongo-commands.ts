/**
 * MongoDB commands as CLIENT spans (`insert filestorage.files`), children of the storage operation
 * that sent them, from the official driver's command monitoring (`monitorCommands`). The
 * OpenTelemetry MongoDB instrumentation would patch the driver as it is loaded, which needs a loader
 * hook for ES modules and does not take on Bun; the driver's own events work the same on both.
 * A command's text is not recorded (it holds file names and metadata): its name, database,
 * collection and server.
 */
import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, MongoClient } from 'mongodb'
import { tracer, tracingEnabled } from './tracing.js'

type CommandEvent = CommandStartedEvent | CommandSucceededEvent | CommandFailedEvent

const keyOf = (e: CommandEvent) => `${String(e.connectionId)}:${e.requestId}`

/** Traces the commands of `client`, which must have been made with `monitorCommands: true`. */
export function traceMongoCommands(client: MongoClient): void {
  const open = new Map<string, Span>()
  client.on('commandStarted', (e) => {
    // Commands outside a traced operation (index creation at start-up) make no trace of their own.
    if (!tracingEnabled() || !trace.getActiveSpan()) return
    const target = (e.command as Record<string, unknown>)[e.commandName]
    const collection = typeof target === 'string' ? target : undefined
    const [host, port] = splitAddress(e.address)
    const span = tracer().startSpan(`${e.commandName} ${collection ? `${e.databaseName}.${collection}` : e.databaseName}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'mongodb',
        'db.operation.name': e.commandName,
        'db.namespace': e.databaseName,
        ...(collection ? { 'db.collection.name': collection } : {}),
        'server.address': host,
        ...(port !== undefined ? { 'server.port': port } : {}),
      },
    })
    open.set(keyOf(e), span)
  })
  client.on('commandSucceeded', (e) => {
    const span = open.get(keyOf(e))
    if (!span) return
    open.delete(keyOf(e))
    span.end()
  })
  client.on('commandFailed', (e) => {
    const span = open.get(keyOf(e))
    if (!span) return
    open.delete(keyOf(e))
    const failure = e.failure as Error & { codeName?: string }
    span.setAttribute('error.type', failure.codeName ?? failure.name)
    span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message })
    span.end()
  })
}

function splitAddress(address: string): [string, number | undefined] {
  const colon = address.lastIndexOf(':')
  if (colon < 0) return [address, undefined]
  return [address.slice(0, colon).replace(/^\[|\]$/g, ''), Number(address.slice(colon + 1))]
}
