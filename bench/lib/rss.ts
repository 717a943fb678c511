/**
 * Peak resident memory of a process, from the kernel: /proc/<pid>/status VmHWM is the high-water
 * mark of its RSS; writing 5 to /proc/<pid>/clear_refs resets that mark to the current RSS, so a
 * peak can be read for one stretch of work. Nothing is sampled, so no short peak is missed.
 */
import { readFileSync, writeFileSync } from 'node:fs'

/** Resets the peak RSS of `pid` to its current RSS. */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5')
}

function statusField(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(m[1]) * 1024
}

/** Peak RSS of `pid` in bytes since start or since the last reset. */
export const peakRss = (pid: number): number => statusField(pid, 'VmHWM')

/** Current RSS of `pid` in bytes. */
export const currentRss = (pid: number): number => statusField(pid, 'VmRSS')

/** Watches the peak RSS of some processes over one stretch of work. */
export class PeakRssWatch {
  readonly #pids: number[]

  constructor(pids: number[]) {
    this.#pids = pids
    for (const pid of pids) resetPeakRss(pid)
  }

  /**
   * The sum of the watched processes' peaks, in bytes: a whole server's memory (an upper bound
   * for one of several processes, whose peaks need not coincide).
   */
  read(): number {
    return this.#pids.map(peakRss).reduce((a, b) => a + b, 0)
  }
}
