/**
 * The TypeScript sources compiled once per test process, file for file, by esbuild: what tsx does
 * again in every Node process it starts (1.5 to 3 s on a loaded machine, against a fraction of a
 * second for the compiled modules), and what `npm run build` does with tsc: one JavaScript module
 * per source module, in the same layout. For the processes a test starts many of: the CLI, and the
 * store children it kills on purpose.
 *
 * The output goes to a folder of this process under `node_modules/.cache`, removed when it exits.
 * Inside the project, so that the modules find its `package.json` (the version) and its
 * dependencies as they do from `src/` and `dist/src/`; not for the service itself, whose UI handler
 * resolves the package by its own name, which Node does not do from inside `node_modules`.
 */
import { readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildSync } from 'esbuild'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Test modules that run as processes of their own, beside `src/`. */
const TEST_ENTRIES = ['test/helpers/store-child.ts']

let out: string | undefined

/** The compiled module of `source` (a path from the project's root, `src/cli/main.ts`). */
export function compiled(source: string): string {
  if (!out) {
    const dir = join(ROOT, 'node_modules/.cache/filestorage-tests', `compiled-${process.pid}`)
    const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.startsWith('ui/')) // the browser's own, bundled apart
      .map((f) => join(ROOT, 'src', f))
    buildSync({ entryPoints: [...sources, ...TEST_ENTRIES.map((f) => join(ROOT, f))], outdir: dir, outbase: ROOT, format: 'esm', platform: 'node', logLevel: 'warning' })
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
    out = dir
  }
  return join(out, source.replace(/\.ts$/, '.js'))
}
