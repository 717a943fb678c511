/**
 * CPU time a set of processes has used (user + system, all threads), from /proc/<pid>/stat.
 * On a machine shared with other work, CPU per unit of work is steadier than the rates are.
 */
import { readFileSync } from 'node:fs'

/** Linux reports these fields in clock ticks of USER_HZ, which is 100 on every architecture Node runs on. */
const MS_PER_TICK = 10

export function cpuMs(pids: number[]): number {
  let ticks = 0
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    ticks += Number(fields[11]) + Number(fields[12])
  }
  return ticks * MS_PER_TICK
}
