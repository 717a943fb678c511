/**
 * Loaded into the service by the memory audit (`node --import`): samples process.memoryUsage()
 * every 20 ms and keeps, in the file MEMORY_PROBE_FILE, the sample of the highest RSS and the peak
 * of each part, so that the audit can say where the memory goes (V8 heap, buffers outside the
 * heap, the rest: native allocations, code, stacks). A sample on demand at SIGUSR2 resets the peaks.
 */
import { renameSync, writeFileSync } from 'node:fs'
import process from 'node:process'
import { setInterval } from 'node:timers'

const file = process.env.MEMORY_PROBE_FILE
if (file) {
  let peak
  let atPeakRss
  const reset = () => {
    peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 }
    atPeakRss = undefined
  }
  reset()
  const sample = () => {
    const m = process.memoryUsage()
    for (const key of Object.keys(peak)) peak[key] = Math.max(peak[key], m[key])
    if (!atPeakRss || m.rss >= atPeakRss.rss) atPeakRss = m
  }
  // Written aside, then renamed over the file: the audit reading it at any moment never finds it
  // emptied (writeFileSync truncates before it writes).
  const draft = `${file}.new`
  setInterval(() => {
    sample()
    writeFileSync(draft, JSON.stringify({ peak, atPeakRss }))
    renameSync(draft, file)
  }, 20).unref()
  process.on('SIGUSR2', reset)
}
