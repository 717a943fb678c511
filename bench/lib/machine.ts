/**
 * What the figures are of: this machine, at this time, under this load.
 */
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { nginxVersion } from './nginx.js'
import { WEED, weedVersion } from './seaweedfs.js'
import { MiB } from './stats.js'

export interface MachineInfo {
  cpus: number
  cpuModel: string
  memoryMiB: number
  kernel: string
  node: string
  nginx: string
  wrk: string
  curl: string
  /** `weed version` and the module version it was built from, or "not built". */
  seaweedfs: string
}

function firstLine(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim()
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? ''
    return out.split('\n')[0]?.trim() || 'unavailable'
  }
}

export function machineInfo(): MachineInfo {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryMiB: Math.round(totalmem() / MiB),
    kernel: release(),
    node: process.version,
    nginx: nginxVersion(),
    wrk: firstLine('wrk', ['--version']),
    curl: firstLine('curl', ['--version']),
    seaweedfs: seaweedFsVersion(),
  }
}

function seaweedFsVersion(): string {
  const module = weedVersion()
  return module ? `${firstLine(WEED, ['version']).replace(/^version\s+/, '').replace(/\s+/g, ' ')} (module ${module})` : 'not built'
}

/** The 1, 5 and 15 minute load averages, as `uptime` shows them. */
export const loadAverage = (): string => loadavg().map((l) => l.toFixed(2)).join(', ')
