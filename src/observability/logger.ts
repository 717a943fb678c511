/**
 * The service's logger (pino): one JSON object a line on stdout, for log collectors; on a terminal
 * (or with LOG_FORMAT=pretty) one readable line per entry instead (`prettyLines`).
 *
 * What is never logged: a token, a signed URL's signature, a secret. The request log writes the
 * path and a query whose signature parameters are masked (`safeQuery`), the principal's subject and
 * never its credentials; pino's `redact` masks such fields should an object carrying them reach a
 * log line anyway (a header set, an option bag).
 *
 * The pretty format is ours rather than pino-pretty's: a dozen lines that print a request the way an
 * operator reads it on one line, instead of a dependency (and its thirteen) in the production image
 * for a terminal nicety.
 */
import { Writable } from 'node:stream'
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino'

export type { Logger }

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
export type LogFormat = 'auto' | 'json' | 'pretty'

export interface LoggerSettings {
  level?: LogLevel
  /** `auto`: pretty when stdout is a terminal. */
  format?: LogFormat
  /** Where the lines go (a test's memory stream); stdout by default. */
  destination?: DestinationStream
}

/**
 * Fields masked in a logged object, at the top or under `headers` (an object carrying a header set
 * or credentials). Named paths: pino's wildcard paths cost 7 µs a line, named ones under 1.
 */
const REDACTED = ['authorization', 'cookie', 'token', 'secret', 'password', 'sig', 'signature'].flatMap((name) => [
  name,
  `headers.${name}`,
  `req.headers.${name}`,
  `options.${name}`,
])

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACTED, censor: '[redacted]' },
  }
  const format = settings.format ?? 'auto'
  const pretty = format === 'pretty' || (format === 'auto' && !settings.destination && process.stdout.isTTY === true)
  if (pretty) return pino(options, prettyLines(settings.destination ?? process.stdout, process.stdout.isTTY === true))
  return pino(options, settings.destination ?? pino.destination({ fd: 1, sync: true }))
}

/** A logger that writes nothing (a host app's service started without one, tests). */
export const silentLogger = (): Logger => pino({ level: 'silent' })

/**
 * The old `(line) => void` log functions (the Consul registration, the MongoDB store) on top of a
 * logger: `[filestorage] ` prefixes dropped, the level as the caller says.
 */
export function lineLog(logger: Logger): (line: string, level?: 'info' | 'warn' | 'error') => void {
  return (line, level = 'info') => logger[level](line.replace(/^\[filestorage\] /, ''))
}

/** Query parameters whose values are credentials: a signed URL's signature, tokens some clients put in a query. */
const SECRET_PARAMETERS = new Set(['sig', 'signature', 'x-amz-signature', 'x-amz-credential', 'x-amz-security-token', 'token', 'access_token', 'key'])

/** The query of `url` as it may be logged (`?exp=...&kid=dev&sig=[redacted]`), or undefined when it has none. */
export function safeQuery(url: string): string | undefined {
  const at = url.indexOf('?')
  if (at < 0 || at === url.length - 1) return undefined
  const query = url.slice(at + 1).split('#')[0]!
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=')
      const name = eq < 0 ? pair : pair.slice(0, eq)
      let decoded = name
      try {
        decoded = decodeURIComponent(name)
      } catch {
        // an undecodable name is compared as it is
      }
      return SECRET_PARAMETERS.has(decoded.toLowerCase()) && eq >= 0 ? `${name}=[redacted]` : pair
    })
    .join('&')
}

const LEVEL_COLOURS: Record<string, string> = { trace: '90', debug: '36', info: '32', warn: '33', error: '31', fatal: '35' }
const SKIPPED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'err'])

/** Writes each JSON line pino makes as `HH:MM:SS.mmm LEVEL message key=value ...` (an error's stack below it). */
export function prettyLines(out: DestinationStream | NodeJS.WritableStream, colours: boolean): Writable {
  const paint = (code: string, text: string) => (colours ? `\x1b[${code}m${text}\x1b[0m` : text)
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const json of chunk.toString('utf8').split('\n')) {
        if (json) out.write(`${pretty(json, paint)}\n`)
      }
      done()
    },
  })
}

function pretty(json: string, paint: (code: string, text: string) => string): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(json) as Record<string, unknown>
  } catch {
    return json
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : ''
  const level = String(entry.level ?? 'info')
  const fields = Object.entries(entry)
    .filter(([key, value]) => !SKIPPED.has(key) && value !== undefined)
    .map(([key, value]) => `${paint('90', `${key}=`)}${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`)
  const err = entry.err as { stack?: string; message?: string } | undefined
  const stack = err ? `\n${err.stack ?? err.message ?? ''}` : ''
  return `${paint('90', time)} ${paint(LEVEL_COLOURS[level] ?? '0', level.toUpperCase().padEnd(5))} ${String(entry.msg ?? '')}${fields.length ? ` ${fields.join(' ')}` : ''}${stack}`
}
