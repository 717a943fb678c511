/**
 * The TypeScript sources compiled once per test process, file for file, by esbuild: what tsx does
 * again in every Node process it starts (1.5 to 3 s on a loaded machine, against a fraction of a
 * second for the compiled modules), and what `npm run build` does with tsc: one JavaScript module
 * per source module, in the same layout. For the processes tests start many of: the service on
 * Node, the CLI, and the store children killed on purpose.
 *
 * The output goes to a folder of this process under the project's `.cache/` (git-ignored), removed
 * when it exits. Inside the project, so that the modules find its `package.json` (the version), its
 * dependencies and the package itself by name (the UI handler resolves `filestorage/package.json`)
 * as they do from `src/` and `dist/src/`; Node resolves a package's own name only outside
 * `node_modules`.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildSync } from 'esbuild'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Test modules that run as processes of their own, beside `src/`. */
const TEST_ENTRIES = ['test/helpers/store-child.ts']

let out: string | undefined

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The copies of test processes that ended without their exit hook (a worker killed by a signal). */
function removeLeftovers(parent: string): void {
  if (!existsSync(parent)) return
  for (const name of readdirSync(parent)) {
    const pid = Number(/^compiled-(\d+)$/.exec(name)?.[1])
    if (pid && !alive(pid)) rmSync(join(parent, name), { recursive: true, force: true })
  }
}

/** The compiled module of `source` (a path from the project's root, `src/cli/main.ts`). */
export function compiled(source: string): string {
  if (!out) {
    const parent = join(ROOT, '.cache/filestorage-tests')
    removeLeftovers(parent)
    const dir = join(parent, `compiled-${process.pid}`)
    const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('ui/')) // the browser's own, bundled apart
      .map((f) => join(ROOT, 'src', f))
    buildSync({ entryPoints: [...sources, ...TEST_ENTRIES.map((f) => join(ROOT, f))], outdir: dir, outbase: ROOT, format: 'esm', platform: 'node', logLevel: 'warning' })
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    out = dir
  }
  return join(out, source.replace(/\.ts$/, '.js'))
}
