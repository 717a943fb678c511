/**
 * The bare `node:http` peer (bench/peers/bare-node.ts) as a process of its own, with 1 or more
 * node:cluster workers: Node's ceiling for small files on this machine.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { freePort } from './ports.js'
import { answers, processTree, startProcess, waitUntil } from './processes.js'
import { PROJECT_DIR } from './service.js'

const PEER_SCRIPT = join(PROJECT_DIR, 'bench', 'peers', 'bare-node.ts')

export interface RunningBareNode {
  /** `http://127.0.0.1:port`; files are at `/<path under root>`. */
  url: string
  /** The process started and its workers. */
  pids: number[]
  stop(): Promise<void>
}

/**
 * The peer as plain JavaScript beside `logFile`: run by `node` alone, like our built service, so
 * that no TypeScript loader weighs on its memory (the script imports only Node's modules).
 */
async function transpiledPeer(logFile: string): Promise<string> {
  const { default: ts } = await import('typescript') // loaded only when this section runs: it is large
  const { outputText } = ts.transpileModule(readFileSync(PEER_SCRIPT, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  })
  const script = join(dirname(logFile), 'bare-node.mjs')
  writeFileSync(script, outputText)
  return script
}

export async function startBareNode(options: { root: string; workers: number; logFile: string }): Promise<RunningBareNode> {
  mkdirSync(options.root, { recursive: true })
  const port = await freePort()
  const started = startProcess(process.execPath, [await transpiledPeer(options.logFile)], {
    env: { ...process.env, NODE_ENV: 'production', PORT: String(port), ROOT: options.root, WORKERS: String(options.workers) },
    cwd: PROJECT_DIR,
    logFile: options.logFile,
  })
  const url = `http://127.0.0.1:${port}`
  // Any answer will do (a 404 for a missing file); with workers, until every one of them is up.
  const workersUp = () => options.workers === 1 || processTree(started.pid).length > options.workers
  await waitUntil('the bare node:http peer', started, async () => workersUp() && (await answers(`${url}/ready`)))
  return { url, pids: processTree(started.pid), stop: () => started.stop('SIGTERM', 10_000) }
}
