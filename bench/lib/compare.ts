/**
 * Measures servers side by side: warm-up on each, then `runs` rounds that take all of them in
 * turn, each round starting one further along (so that drifting machine noise falls on all alike),
 * with the CPU time and the peak RSS of each side's processes.
 */
import { cpuMs } from './cpu.js'
import { figureOf, type Figure, type RunSample } from './results.js'
import { PeakRssWatch } from './rss.js'

export interface Contender {
  /** Processes whose CPU time and peak RSS are counted (every process of the server). */
  pids: number[]
  /** Runs before the measured rounds, not counted. */
  warmup?: () => Promise<unknown>
  /** One measured run. */
  measure: () => Promise<RunSample>
}

export interface Measured {
  figure: Figure
  /** Undefined for a side without processes of its own (a floor measured in the bench's process). */
  peakRss?: number
}

export interface Comparison {
  ours: Figure
  peer?: Figure
  oursPeakRss: number
  peerPeakRss?: number
}

/** The contenders' figures, in the order given. */
export async function rotate(runs: number, contenders: Contender[]): Promise<Measured[]> {
  const watches = contenders.map((c) => (c.pids.length ? new PeakRssWatch(c.pids) : undefined))
  for (const contender of contenders) await contender.warmup?.()
  const samples: RunSample[][] = contenders.map(() => [])
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const i = (round + k) % contenders.length
      samples[i]!.push(await measured(contenders[i]!))
    }
  }
  return contenders.map((_, i) => {
    const peakRss = watches[i]?.read()
    return { figure: figureOf(samples[i]!), ...(peakRss === undefined ? {} : { peakRss }) }
  })
}

/** Our side against a peer's (or alone), ours first in the first round. */
export async function compare(runs: number, ours: Contender, peer?: Contender): Promise<Comparison> {
  const [o, p] = await rotate(runs, peer ? [ours, peer] : [ours])
  const result: Comparison = { ours: o!.figure, oursPeakRss: o!.peakRss ?? 0 }
  if (p) result.peer = p.figure
  if (p?.peakRss !== undefined) result.peerPeakRss = p.peakRss
  return result
}

/** One run, with the CPU time its side's processes used meanwhile. */
async function measured(side: Contender): Promise<RunSample> {
  if (side.pids.length === 0) return side.measure()
  const before = cpuMs(side.pids)
  const sample = await side.measure()
  return { ...sample, cpuMs: cpuMs(side.pids) - before }
}
