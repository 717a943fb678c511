/**
 * CPU time a set of processes has used (user + system, all threads), from /proc/<pid>/stat.
 * On a machine shared with other work, CPU per unit of work is steadier than the rates are.
 */
import { readdirSync, readFileSync } from 'node:fs'

/** Linux reports these fields in clock ticks of USER_HZ, which is 100 on every architecture Node runs on. */
const MS_PER_TICK = 10

/** User and system time (ms) from a /proc `stat` file of a process or a thread. */
function userSystemMs(statFile: string): { userMs: number; systemMs: number } {
  const stat = readFileSync(statFile, 'utf8')
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { userMs: Number(fields[11]) * MS_PER_TICK, systemMs: Number(fields[12]) * MS_PER_TICK }
}

export function cpuMs(pids: number[]): number {
  let ms = 0
  for (const pid of pids) {
    const { userMs, systemMs } = userSystemMs(`/proc/${pid}/stat`)
    ms += userMs + systemMs
  }
  return ms
}

/**
 * CPU time of every thread of `pids`, keyed `<pid>/<tid>`, the main thread (tid = pid) marked
 * `main`: where a process's work is done (its event loop, libuv's pool threads, V8's helpers).
 * A thread that ended meanwhile is left out.
 */
export function threadCpuMs(pids: number[]): Map<string, { userMs: number; systemMs: number }> {
  const threads = new Map<string, { userMs: number; systemMs: number }>()
  for (const pid of pids) {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        threads.set(`${pid}/${tid}${tid === String(pid) ? ' main' : ''}`, userSystemMs(`/proc/${pid}/task/${tid}/stat`))
      } catch {
        // gone between the listing and the read
      }
    }
  }
  return threads
}
