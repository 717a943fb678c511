/**
 * What the figures are of: this machine, at this time, under this load.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, realpathSync } from 'node:fs'
import { basename } from 'node:path'
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

/**
 * The file system holding `dir` (the bench's working folder, where every peer keeps its files), as
 * "ext4 on /dev/vda (no journal)". Told because it moves the upload rows more than anything else:
 * ext4 without a journal skips every inode freed in the last one to six minutes when it makes a new
 * one, so each file created costs more the more were deleted before (`npm run bench:syscalls`).
 */
export function fileSystem(dir: string): string {
  try {
    const real = realpathSync(dir)
    let best: { mountPoint: string; type: string; source: string } | undefined
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const [before, after] = line.split(' - ')
      const mountPoint = before?.split(' ')[4]
      const [type, source] = after?.split(' ') ?? []
      if (!mountPoint || !type || !source) continue
      const inside = real === mountPoint || real.startsWith(mountPoint === '/' ? '/' : `${mountPoint}/`)
      if (inside && mountPoint.length >= (best?.mountPoint.length ?? 0)) best = { mountPoint, type, source }
    }
    if (!best) return 'unknown'
    return `${best.type} on ${best.source}${best.type === 'ext4' ? ext4Journal(best.source) : ''}`
  } catch {
    return 'unknown'
  }
}

function ext4Journal(source: string): string {
  try {
    return readFileSync(`/sys/fs/ext4/${basename(source)}/journal_task`, 'utf8').trim() === '<none>' ? ' (no journal)' : ' (journaled)'
  } catch {
    return ''
  }
}
