#!/usr/bin/env node
/**
 * `filestorage`: the command-line client (the package's `bin`). SIGINT or SIGTERM stops the
 * transfers in flight (an interrupted `put` or `get` goes on when run again) and exits with 130;
 * a second one exits at once.
 */
import { runCli } from './program.js'

const interrupt = new AbortController()
const onSignal = () => {
  if (interrupt.signal.aborted) process.exit(130)
  interrupt.abort(new DOMException('interrupted', 'AbortError'))
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)

const code = await runCli(process.argv, interrupt.signal)
// Idle kept-alive connections and the like must not hold the process; stdout is flushed first.
process.stdout.write('', () => process.exit(code))
