/**
 * A program a test runs itself (FerretDB, a Consul agent, nginx, the service as a process): its
 * output kept for error messages, its exit awaited, and a bounded stop (a signal, then SIGKILL).
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process'

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface TestChild {
  child: ChildProcess
  /** Everything it wrote to stdout and stderr so far. */
  output(): string
  running(): boolean
  exited: Promise<Exit>
  /** Sends `signal` and waits for the exit, killing it after `killAfterMs`; at once when it has exited. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<Exit>
}

export function spawnChild(command: string, args: string[], options: Omit<SpawnOptions, 'stdio'> = {}): TestChild {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    // A program that cannot be started at all: no 'exit' follows.
    child.once('error', (e) => {
      output += `\n${e.message}`
      resolve({ code: null, signal: null })
    })
  })
  let ended = false
  void exited.then(() => (ended = true))
  const running = () => !ended && child.exitCode === null && child.signalCode === null
  return {
    child,
    output: () => output,
    running,
    exited,
    async stop(signal = 'SIGTERM', killAfterMs = 10_000) {
      if (!running()) return exited
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs)
      try {
        return await exited
      } finally {
        clearTimeout(timer)
      }
    },
  }
}
