/**
 * The CLI's exit codes and error reports: every failure, from the API (its JSON error, SPEC 3.5), from
 * the network, from the local disk or from the command line, becomes one report with an exit code a
 * script can test. The table is documented in docs/cli.md; keep both in step.
 */
import { CommanderError } from 'commander'
import { DiscoveryError, FileStorageError } from '../adapters/discovery/index.js'

export const EXIT = {
  ok: 0,
  /** Anything not below: an unexpected answer, a local I/O error, a bug. */
  failure: 1,
  /** A bad command line: unknown command or option, missing argument, `STORE:PATH` expected. */
  usage: 2,
  /** The remote file or folder (404 `not_found`, `unknown_store`) or a local source does not exist. */
  notFound: 3,
  /** Refused because of what is there: 409 (`already_exists`, `directory_not_empty`), 412 (`If-None-Match`, `If-Match`). */
  conflict: 4,
  /** 401: no token, or a bad one. */
  unauthorized: 5,
  /** 403: the token does not grant this; or the local file cannot be read or written. */
  forbidden: 6,
  /** The service refused the request itself: 400 (`invalid_path`, ...), 413, 416. */
  invalid: 7,
  /** No answer: connection refused or cut, no instance in Consul, 503 `store_unavailable`, 408; 429 `rate_limited` (try again later). */
  unavailable: 8,
  /** 507 `insufficient_storage`, 403 `quota_exceeded`, or the local disk is full. */
  noSpace: 9,
  /** Bytes that do not match their sha256 (400 `checksum_mismatch`, or a download that arrived wrong). */
  integrity: 10,
  /** Stopped by SIGINT or SIGTERM; an interrupted `put` or `get` resumes when run again. */
  interrupted: 130,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** A failure the CLI finds itself (a bad argument, bytes that do not match), with its exit code. */
export class CliError extends Error {
  override name = 'CliError'
  constructor(
    readonly exitCode: ExitCode,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export const usageError = (message: string) => new CliError(EXIT.usage, 'usage', message)

/** What a failure is, as printed (`--json`: `{ "error": ErrorReport }` on stderr). */
export interface ErrorReport {
  exitCode: ExitCode
  /** The API's error code (`not_found`, ...) or one of the CLI's (`usage`, `local_not_found`, `network`, ...). */
  code: string
  message: string
  /** The HTTP status, when the service answered. */
  status?: number
  details?: unknown
}

const BY_STATUS: Record<number, ExitCode> = {
  400: EXIT.invalid,
  401: EXIT.unauthorized,
  403: EXIT.forbidden,
  404: EXIT.notFound,
  408: EXIT.unavailable,
  409: EXIT.conflict,
  412: EXIT.conflict,
  413: EXIT.invalid,
  416: EXIT.invalid,
  429: EXIT.unavailable,
  502: EXIT.unavailable,
  503: EXIT.unavailable,
  504: EXIT.unavailable,
  507: EXIT.noSpace,
}

/** API errors whose code says more than their status. */
const BY_CODE: Record<string, ExitCode> = {
  checksum_mismatch: EXIT.integrity,
  quota_exceeded: EXIT.noSpace,
}

/** Local errors by errno. */
const BY_ERRNO: Record<string, { exitCode: ExitCode; code: string }> = {
  ENOENT: { exitCode: EXIT.notFound, code: 'local_not_found' },
  ENOTDIR: { exitCode: EXIT.notFound, code: 'local_not_found' },
  EACCES: { exitCode: EXIT.forbidden, code: 'local_access_denied' },
  EPERM: { exitCode: EXIT.forbidden, code: 'local_access_denied' },
  EISDIR: { exitCode: EXIT.conflict, code: 'local_is_a_folder' },
  EEXIST: { exitCode: EXIT.conflict, code: 'local_exists' },
  ENOSPC: { exitCode: EXIT.noSpace, code: 'local_no_space' },
  EDQUOT: { exitCode: EXIT.noSpace, code: 'local_no_space' },
}

export function reportOf(error: unknown): ErrorReport {
  if (error instanceof CliError) return { exitCode: error.exitCode, code: error.code, message: error.message }
  if (error instanceof FileStorageError) {
    const exitCode = BY_CODE[error.code] ?? BY_STATUS[error.status] ?? EXIT.failure
    const report: ErrorReport = { exitCode, code: error.code, message: error.message, status: error.status }
    if (error.details !== undefined) report.details = error.details
    return report
  }
  if (error instanceof DiscoveryError) return { exitCode: EXIT.unavailable, code: error.code, message: error.message }
  if (error instanceof CommanderError) return { exitCode: EXIT.usage, code: 'usage', message: error.message.replace(/^error: /, '') }
  if (isAbort(error)) return { exitCode: EXIT.interrupted, code: 'interrupted', message: 'interrupted' }
  const errno = (error as NodeJS.ErrnoException | undefined)?.code
  const local = errno ? BY_ERRNO[errno] : undefined
  if (local) return { ...local, message: (error as Error).message }
  return { exitCode: EXIT.failure, code: 'error', message: error instanceof Error ? error.message : String(error) }
}

export function isAbort(error: unknown): boolean {
  const name = (error as Error | undefined)?.name
  return name === 'AbortError' || (error as { code?: string } | undefined)?.code === 'ABORT_ERR'
}
