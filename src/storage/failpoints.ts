/**
 * Failpoints: named places in a commit protocol where a test can make the process die at once, as
 * `kill -9` would, to prove what a crash at exactly that step leaves and how it is resolved.
 *
 * Inert unless the process was started with FILESTORAGE_FAILPOINTS set (a comma-separated list of
 * names, each `name` or `name@n`): then reaching a listed point (for the n-th time, with `@n`: a
 * point on a path that only a second operation of the process takes) kills the process with
 * SIGKILL, with no cleanup of any kind.
 */

/** Armed points, each with how many more times it is passed before the process dies. */
const armed = new Map<string, number>()
for (const entry of (process.env.FILESTORAGE_FAILPOINTS ?? '').split(',')) {
  const [name, nth = '1'] = entry.trim().split('@')
  if (!name) continue
  if (!/^[1-9]\d*$/.test(nth)) throw new Error(`FILESTORAGE_FAILPOINTS: "${entry.trim()}" is not name or name@n`)
  armed.set(name, Number(nth) - 1)
}

export function failpoint(name: string): void {
  if (armed.size === 0) return
  const passes = armed.get(name)
  if (passes === 0) process.kill(process.pid, 'SIGKILL')
  else if (passes !== undefined) armed.set(name, passes - 1)
}
