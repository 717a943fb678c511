/**
 * Run samples from what the clients report: a transfer (MB/s, per GiB of CPU) or a load run
 * (requests per second with latency, CPU per 1000 requests).
 */
import type { RunSample } from './results.js'
import { GiB, megabytesPerSecond } from './stats.js'
import type { LoadResult } from './wrk.js'

export const transferSample = (bytes: number, seconds: number): RunSample => ({
  value: megabytesPerSecond(bytes, seconds),
  units: bytes / GiB,
})

export const loadSample = (r: LoadResult): RunSample => ({
  value: r.requestsPerSecond,
  p50Ms: r.p50Ms,
  p99Ms: r.p99Ms,
  errors: r.errors,
  units: r.requests / 1000,
})
