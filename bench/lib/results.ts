/**
 * One line of the results table: a figure of ours beside the same figure of a peer, each the
 * median of several runs, with the peak RSS of our process (and the peer's) while it was measured.
 */
import { median } from './stats.js'

export interface Figure {
  /** Median of `runs`. */
  median: number
  runs: number[]
  /** Latency percentiles (ms), medians over the runs, for request-rate figures. */
  p50Ms?: number
  p99Ms?: number
  /** Requests that failed, over all runs (request-rate figures). */
  errors?: number
  /** CPU time of the measured side's processes per unit of work (per GiB, or per 1000 requests), median. */
  cpuMsPerUnit?: number
  cpuMsPerUnitRuns?: number[]
}

export interface Row {
  section: string
  name: string
  unit: 'MB/s' | 'req/s' | 'MiB'
  peerName?: string
  ours?: Figure
  peer?: Figure
  /** ours / peer, of the medians; higher is better for us. */
  ratio?: number
  /** The ratio this row must reach (an issue's target); the table marks a ratio below it. */
  target?: number
  /** A row of another server against the peer, not ours: its ratio is context, never marked. */
  reference?: boolean
  /** Peak RSS in bytes while the row was measured (warm-up included). */
  oursPeakRss?: number
  peerPeakRss?: number
  /** Set instead of figures when the row could not be measured. */
  notAvailable?: string
  note?: string
}

export interface RunSample {
  value: number
  p50Ms?: number
  p99Ms?: number
  errors?: number
  /** Units of work done in the run (GiB moved, or thousands of requests), for CPU per unit. */
  units?: number
  /** CPU time the side's processes used during the run (set by compare()). */
  cpuMs?: number
}

export function figureOf(samples: RunSample[]): Figure {
  const figure: Figure = { median: median(samples.map((s) => s.value)), runs: samples.map((s) => s.value) }
  const p50 = samples.flatMap((s) => (s.p50Ms === undefined ? [] : [s.p50Ms]))
  const p99 = samples.flatMap((s) => (s.p99Ms === undefined ? [] : [s.p99Ms]))
  if (p50.length) figure.p50Ms = median(p50)
  if (p99.length) figure.p99Ms = median(p99)
  const errors = samples.flatMap((s) => (s.errors === undefined ? [] : [s.errors]))
  if (errors.length) figure.errors = errors.reduce((a, b) => a + b, 0)
  const cpu = samples.flatMap((s) => (s.cpuMs === undefined || !s.units ? [] : [s.cpuMs / s.units]))
  if (cpu.length) {
    figure.cpuMsPerUnit = median(cpu)
    figure.cpuMsPerUnitRuns = cpu
  }
  return figure
}

export function comparedRow(row: Omit<Row, 'ratio'>): Row {
  const ratio = row.ours && row.peer ? row.ours.median / row.peer.median : undefined
  return ratio === undefined ? row : { ...row, ratio }
}

export const unavailable = (section: string, name: string, unit: Row['unit'], reason: string): Row => ({
  section,
  name,
  unit,
  notAvailable: reason,
})
