/**
 * Where the time went, from a V8 .cpuprofile (`node --cpu-prof`): self time per function and per
 * origin (our code, a package, Node's internals, the garbage collector), idle time left out.
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

export interface SelfTime {
  name: string
  ms: number
  /** Share of the busy (non-idle) time. */
  share: number
}

export interface ProfileSummary {
  busyMs: number
  idleMs: number
  functions: SelfTime[]
  origins: SelfTime[]
}

/** `hono`, `@hono/node-server`, `ours` (dist/src), `node` (node: internals), or a bracketed V8 name. */
export function originOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)'
  if (url.startsWith('node:')) return 'node internals'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg) return pkg[1]!
  if (url.includes('/dist/src/')) return 'ours (dist/src)'
  return url.replace(/^file:\/\//, '')
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/')
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfById = new Map<number, number>()
  profile.samples.forEach((id, i) => selfById.set(id, (selfById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))

  const functions = new Map<string, number>()
  const origins = new Map<string, number>()
  let idle = 0
  let busy = 0
  for (const [id, us] of selfById) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame
    if (functionName === '(idle)') {
      idle += us
      continue
    }
    busy += us
    const name = `${functionName || '(anonymous)'}${url ? ` ${shortUrl(url)}:${lineNumber + 1}` : ''}`
    functions.set(name, (functions.get(name) ?? 0) + us)
    const origin = originOf(url, functionName)
    origins.set(origin, (origins.get(origin) ?? 0) + us)
  }
  const ranked = (m: Map<string, number>, n: number): SelfTime[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busy ? us / busy : 0 }))
  return { busyMs: busy / 1000, idleMs: idle / 1000, functions: ranked(functions, top), origins: ranked(origins, 12) }
}

export function formatSummary(summary: ProfileSummary): string {
  const line = (s: SelfTime) => `${(s.share * 100).toFixed(1).padStart(5)}%  ${s.ms.toFixed(0).padStart(7)} ms  ${s.name}`
  return [
    `busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms`,
    '',
    'self time by origin:',
    ...summary.origins.map(line),
    '',
    'top functions by self time:',
    ...summary.functions.map(line),
  ].join('\n')
}
