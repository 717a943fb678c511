/** What every command gets: the connection, the output, and the run's settings. */
import type { Connection } from './connection.js'
import { EXIT, type ErrorReport, type ExitCode, reportOf } from './errors.js'
import type { Output } from './output.js'
import type { TransferProgress } from './progress.js'
import { forEachLimited } from '../storage/for-each-limited.js'

export interface CliContext {
  connection: Connection
  out: Output
  /** Progress bars wanted (and possible: both stdout and stderr are terminals). */
  progress: boolean
  stateDir: string
  /** Aborted on SIGINT or SIGTERM. */
  signal: AbortSignal
}

export interface BatchFailure {
  subject: string
  error: ErrorReport
}

/**
 * Runs `transfer` over `jobs`, at most `parallel` at a time. A job that fails is reported at once
 * (above the progress bars) and the others go on; an interrupt stops taking new jobs. The exit code
 * is that of the first failure.
 */
export async function runBatch<Job, Result>(
  ctx: CliContext,
  progress: TransferProgress,
  jobs: Job[],
  parallel: number,
  subjectOf: (job: Job) => string,
  transfer: (job: Job) => Promise<Result>,
): Promise<{ results: Result[]; failures: BatchFailure[]; exitCode: ExitCode }> {
  const results: Result[] = []
  const failures: BatchFailure[] = []
  try {
    await forEachLimited(jobs, parallel, async (job) => {
      if (ctx.signal.aborted) return
      try {
        results.push(await transfer(job))
      } catch (e) {
        const error = ctx.signal.aborted ? reportOf(ctx.signal.reason) : reportOf(e)
        failures.push({ subject: subjectOf(job), error })
        if (error.exitCode !== EXIT.interrupted) ctx.out.error(error, subjectOf(job))
      }
    })
  } finally {
    progress.stop()
  }
  const exitCode = ctx.signal.aborted ? EXIT.interrupted : (failures[0]?.error.exitCode ?? EXIT.ok)
  return { results, failures, exitCode }
}
