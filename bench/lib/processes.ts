/**
 * Child processes the bench starts (our service, nginx, the tus peer): started with their output
 * in a log file, waited for until they answer, and stopped by signal with a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs'

export interface StartedProcess {
  child: ChildProcess
  pid: number
  logFile: string
  /** Sends `signal`, waits up to `timeoutMs` for the exit, then kills. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>
}

/**
 * What must not outlive the bench if it is interrupted or fails: the processes it started (killed)
 * and other clean-ups (FerretDB, started in its own session by scripts/test-services.sh).
 */
const running = new Set<ChildProcess>()
const cleanups = new Set<() => void>()

/** Registers a synchronous clean-up for an interrupted run; returns its removal. */
export function onInterrupt(cleanup: () => void): () => void {
  cleanups.add(cleanup)
  return () => cleanups.delete(cleanup)
}

/** Tracks a child (a client run with execFile, say) until it exits. */
export function track(child: ChildProcess): void {
  running.add(child)
  child.once('exit', () => running.delete(child))
}

function cleanUp(): void {
  // SIGTERM: nginx's master then stops its worker; our service stops at once when idle.
  for (const child of running) child.kill('SIGTERM')
  for (const cleanup of cleanups) {
    try {
      cleanup()
    } catch {
      // best effort: the run is ending anyway
    }
  }
  cleanups.clear()
}

process.once('exit', cleanUp)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`[bench] ${signal}: stopping what the bench started`)
    cleanUp()
    process.exit(130)
  })
}

export function startProcess(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; logFile: string },
): StartedProcess {
  const log = openSync(options.logFile, 'a')
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', log, log],
  })
  closeSync(log)
  if (child.pid === undefined) throw new Error(`${command} did not start`)
  track(child)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    child,
    pid: child.pid,
    logFile: options.logFile,
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill(signal)
      const deadline = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
      await exited
      clearTimeout(deadline)
    },
  }
}

/** The last lines of a log, for an error message. */
export function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/**
 * Polls `probe` until it returns true; fails when the process exits or `timeoutMs` passes.
 */
export async function waitUntil(
  what: string,
  started: StartedProcess,
  probe: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (started.child.exitCode !== null || started.child.signalCode !== null) {
      throw new Error(`${what} exited while starting:\n${logTail(started.logFile)}`)
    }
    if (await probe().catch(() => false)) return
    if (Date.now() > deadline) {
      await started.stop('SIGKILL')
      throw new Error(`${what} did not answer within ${timeoutMs / 1000} s:\n${logTail(started.logFile)}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** True when `url` answers with a status below 500 within a second. */
export async function answers(url: string, init: RequestInit = {}): Promise<boolean> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(1000) })
  await res.body?.cancel()
  return res.status < 500
}

/**
 * `pid` and all its descendants (a cluster's primary and workers, nginx's master and workers),
 * from /proc/<pid>/task/<tid>/children; a process that exits meanwhile is left out.
 */
export function processTree(pid: number): number[] {
  const children: number[] = []
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
      if (list) children.push(...list.split(/\s+/).map(Number))
    }
  } catch {
    return []
  }
  return [pid, ...children.flatMap(processTree)]
}
