/**
 * A logger whose lines stay in memory, as the service would write them (JSON, one object a line),
 * for suites that read the request log of an in-process service.
 */
import { createLogger, type Logger, type LogLevel } from '../../src/observability/logger.js'

export interface MemoryLog {
  logger: Logger
  /** Every line written so far, as written. */
  text(): string
  /** Every line written so far, parsed. */
  entries(): Record<string, unknown>[]
}

export function memoryLog(level: LogLevel = 'info'): MemoryLog {
  const lines: string[] = []
  const logger = createLogger({ level, format: 'json', destination: { write: (line: string) => void lines.push(line) } })
  return {
    logger,
    text: () => lines.join(''),
    entries: () => lines.flatMap((chunk) => chunk.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>)),
  }
}
