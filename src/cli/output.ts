/**
 * What the CLI prints: results on stdout (one JSON document with `--json`, else lines for people),
 * warnings and errors on stderr (with `--json`, one JSON object a line: `{ "error": ... }` or
 * `{ "warning": ... }`).
 */
import type { ErrorReport } from './errors.js'

export class Output {
  constructor(
    readonly json: boolean,
    private readonly stdout: NodeJS.WritableStream = process.stdout,
    private readonly stderr: NodeJS.WritableStream = process.stderr,
  ) {}

  /** The command's result: `value` as JSON, or the lines `human` makes of it. */
  result<T>(value: T, human: (value: T) => string[]): void {
    if (this.json) this.stdout.write(`${JSON.stringify(value)}\n`)
    else for (const line of human(value)) this.stdout.write(`${line}\n`)
  }

  /** One line for people, as it comes (a long listing page by page). */
  line(text: string): void {
    this.stdout.write(`${text}\n`)
  }

  warn(message: string, subject?: string): void {
    if (this.json) this.stderr.write(`${JSON.stringify({ warning: { message, ...(subject ? { subject } : {}) } })}\n`)
    else this.stderr.write(`filestorage: ${subject ? `${subject}: ` : ''}${message}\n`)
  }

  /** An error; `subject` names the file or path it concerns. */
  error(report: ErrorReport, subject?: string): void {
    if (this.json) {
      this.stderr.write(`${JSON.stringify({ error: { ...report, ...(subject ? { subject } : {}) } })}\n`)
      return
    }
    const where = report.status ? ` (${report.status} ${report.code})` : report.code === 'error' ? '' : ` (${report.code})`
    this.stderr.write(`filestorage: ${subject ? `${subject}: ` : ''}${report.message}${where}\n`)
  }
}

/** `1.50 MiB`: two decimals below 10, one above. */
export { formatBytes } from '../format-bytes.js'
