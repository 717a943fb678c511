/**
 * `npm test`: the projects of vitest.config.ts ("lanes") side by side,
 * one vitest process each, every lane running its own files one at a time. One lane holds the files
 * that mostly wait (timeouts, Consul's reaper, retry backoffs, a cluster's lock ring), so their waits
 * pass while the other lane uses the cores; two vitest processes, since a vitest run's `maxWorkers`
 * counts across its projects. The real services (test/setup/services.ts) are started once here and
 * shared: each lane's own global setup sees their variables set and leaves them be.
 *
 *   node --import tsx scripts/test-lanes.ts              every lane, side by side
 *   node --import tsx scripts/test-lanes.ts <args...>    one plain `vitest run <args...>`
 *
 * The first lane's output is shown as it comes; the others' lines are shown as they come too, each
 * prefixed with its lane's name. The exit status fails if any lane failed.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'
import type { UserWorkspaceConfig } from 'vitest/config'
import startServices from '../test/setup/services.js'
import config from '../vitest.config.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const VITEST = resolve(ROOT, 'node_modules/vitest/vitest.mjs')

interface Lane {
  name: string
  status: number
  seconds: number
}

/** The names of the config's inline projects, in order. */
function laneNames(): string[] {
  const projects = (config.test?.projects ?? []) as UserWorkspaceConfig[]
  return projects.map((p) => p.test?.name).filter((n): n is string => typeof n === 'string')
}

const children = new Set<ChildProcess>()

function runVitest(args: string[], prefix?: string): Promise<number> {
  const child = spawn(process.execPath, [VITEST, 'run', ...args], {
    cwd: ROOT,
    stdio: prefix === undefined ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  })
  if (prefix !== undefined) {
    for (const [from, to] of [
      [child.stdout!, process.stdout],
      [child.stderr!, process.stderr],
    ] as const) {
      createInterface({ input: from }).on('line', (line) => to.write(`${prefix}${line}\n`))
    }
  }
  children.add(child)
  return new Promise((done) =>
    child.on('close', (code, signal) => {
      children.delete(child)
      done(code ?? (signal ? 1 : 0))
    }),
  )
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2)
  const names = laneNames()
  if (argv.length > 0 || names.length < 2) return runVitest(argv)

  const stopServices = startServices()
  // A terminal's Ctrl-C reaches the vitest processes too (one process group), a SIGTERM is passed
  // on: either way, wait for them to end, then stop the services.
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => children.forEach((c) => c.kill('SIGTERM')))
  try {
    const width = Math.max(...names.map((n) => n.length))
    const lanes = await Promise.all(
      names.map(async (name, i): Promise<Lane> => {
        const started = Date.now()
        const status = await runVitest(['--project', name], i === 0 ? undefined : `${name.padEnd(width)} │ `)
        return { name, status, seconds: Math.round((Date.now() - started) / 1000) }
      }),
    )
    console.log(`\nlanes: ${lanes.map((l) => `${l.name} ${l.status === 0 ? 'passed' : 'FAILED'} in ${l.seconds} s`).join('; ')}`)
    return lanes.some((l) => l.status !== 0) ? 1 : 0
  } finally {
    stopServices()
  }
}

process.exitCode = await main()
