/**
 * Builds the file browser's front end (src/ui, TypeScript with Uppy) into one script and one
 * stylesheet in dist/ui, which the ui handler serves. `npm run build` runs it (so `npm start` has
 * the files), and so does the test run's global setup (test/setup/ui-bundle.ts).
 *
 *   node --import tsx scripts/build-ui.ts
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Where the bundle goes, relative to the package root (the handler reads it from there). */
export const UI_OUT_DIR = 'dist/ui'

export async function buildUi(): Promise<void> {
  await build({
    absWorkingDir: ROOT,
    entryPoints: [
      { in: 'src/ui/main.ts', out: 'filestorage-ui' },
      { in: 'src/ui/ui.css', out: 'filestorage-ui' },
    ],
    outdir: UI_OUT_DIR,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'linked', // the libraries' licences, in a file beside the bundle
    logLevel: 'warning',
  })
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildUi()
