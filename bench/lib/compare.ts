/**
 * Measures our service and a peer side by side: warm-up on each, then `runs` rounds that take
 * both in turn (the order alternating, so that drifting machine noise falls on both alike), with
 * the peak RSS of each side's processes over the whole stretch.
 */
import { cpuMs } from './cpu.js'
import { figureOf, type Figure, type RunSample } from './results.js'
import { PeakRssWatch } from './rss.js'

export interface Contender {
  /** Processes whose peak RSS is reported (our service; the peer's server). */
  pids: number[]
  /** Runs before the measured rounds, not counted. */
  warmup?: () => Promise<unknown>
  /** One measured run. */
  measure: () => Promise<RunSample>
}

export interface Comparison {
  ours: Figure
  peer?: Figure
  oursPeakRss: number
  peerPeakRss?: number
}

export async function compare(runs: number, ours: Contender, peer?: Contender): Promise<Comparison> {
  const oursWatch = new PeakRssWatch(ours.pids)
  const peerWatch = peer && peer.pids.length ? new PeakRssWatch(peer.pids) : undefined
  await ours.warmup?.()
  await peer?.warmup?.()
  const oursSamples: RunSample[] = []
  const peerSamples: RunSample[] = []
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0 || !peer) {
      oursSamples.push(await measured(ours))
      if (peer) peerSamples.push(await measured(peer))
    } else {
      peerSamples.push(await measured(peer))
      oursSamples.push(await measured(ours))
    }
  }
  const result: Comparison = { ours: figureOf(oursSamples), oursPeakRss: oursWatch.read() }
  if (peer) result.peer = figureOf(peerSamples)
  if (peerWatch) result.peerPeakRss = peerWatch.read()
  return result
}

/** One run, with the CPU time its side's processes used meanwhile. */
async function measured(side: Contender): Promise<RunSample> {
  if (side.pids.length === 0) return side.measure()
  const before = cpuMs(side.pids)
  const sample = await side.measure()
  return { ...sample, cpuMs: cpuMs(side.pids) - before }
}
