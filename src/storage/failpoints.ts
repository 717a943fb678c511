/**
 * Failpoints: named places in a commit protocol where a test can make the process die at once, as
 * `kill -9` would, to prove what a crash at exactly that step leaves and how it is resolved.
 *
 * Inert unless the process was started with FILESTORAGE_FAILPOINTS set (a comma-separated list of
 * names): then reaching a listed point kills the process with SIGKILL, with no cleanup of any kind.
 */
const armed = new Set(
  (process.env.FILESTORAGE_FAILPOINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
)

export function failpoint(name: string): void {
  if (armed.size > 0 && armed.has(name)) process.kill(process.pid, 'SIGKILL')
}
