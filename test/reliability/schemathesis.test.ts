/**
 * schemathesis (PyPI, 4.x) over the running service's own OpenAPI document, with all its checks:
 * the document must describe exactly what the server accepts and answers (statuses, headers,
 * content types), and the server must never answer 500. Bounded by examples per operation and a
 * time limit on the process.
 *
 * Every check runs (`--checks all`). Two of them have nothing to look at here, said so rather than
 * excluded: `ignored_auth` and `object_level_authorization` need security schemes, and the
 * anonymous disk service declares none. schemathesis/schemathesis.toml widens the statuses two
 * checks accept where a protocol mandates others (tus's 412, 413, 415 and 460; an opaque cursor's
 * 400) and turns off the body check of the download (stored bytes in their uploader's type, no
 * schema), and schemathesis/hooks.py gives it a generator for tus's upload media type, drops the
 * coverage phase's mislabelled cases (positive, with a header value the declared pattern refuses)
 * and shows it a download's stored bytes as opaque in every phase.
 */
import { spawn } from 'node:child_process'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, test } from 'vitest'
import { requireBinary } from '../helpers/external.js'
import type { ProcessService } from '../helpers/process-service.js'
import { report, startBuilt, tempDir, trackPeakRss } from './harness.js'
import { SCHEMATHESIS } from './knobs.js'

const SETTINGS = fileURLToPath(new URL('./schemathesis', import.meta.url))
const DEFAULT_BIN = join(process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache/filestorage'), 'venv/bin/schemathesis')

let svc: ProcessService | undefined
afterAll(async () => {
  await svc?.stop('SIGKILL')
})

function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', SCHEMATHESIS_HOOKS: 'hooks', PYTHONPATH: SETTINGS } })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    const timer = setTimeout(() => {
      output += `\n[reliability] schemathesis did not finish in ${timeoutMs / 1000} s: killed`
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

test('schemathesis with all its checks finds nothing in the disk service and its OpenAPI document', async (ctx) => {
  const bin = requireBinary('SCHEMATHESIS_BIN', [DEFAULT_BIN], 'schemathesis')
  if (!bin) {
    ctx.skip()
    return
  }
  const dir = await tempDir('schemathesis')
  try {
    svc = await startBuilt({ STORAGE_DIR: join(dir.path, 'data') })
    const args = [
      '--no-color',
      '--config-file',
      join(SETTINGS, 'schemathesis.toml'),
      'run',
      `${svc.api}/openapi.json`,
      '--checks',
      'all',
      '--max-examples',
      String(SCHEMATHESIS.maxExamples),
      '--seed',
      String(SCHEMATHESIS.seed),
      '--workers',
      String(SCHEMATHESIS.workers),
      '--request-timeout',
      '5',
      '--max-time',
      String(SCHEMATHESIS.maxTimeSeconds),
    ]
    const running = svc
    const rss = trackPeakRss(() => [running])
    const { code, output } = await run(bin, args, dir.path, SCHEMATHESIS.timeoutSeconds * 1000)
    const peakRssMiB = await rss.stop()
    const summary = output.trim().split('\n').slice(-1)[0] ?? ''
    const failures = [...output.matchAll(/^_{3,} (.+?) _{3,}$/gm)].map((m) => m[1]!)
    console.log(`[reliability] schemathesis ${SCHEMATHESIS.version} (${args.slice(5).join(' ')}): ${summary}`)
    await report('schemathesis', { peakRssMiB, failed: code === 0 ? [] : [`exit ${code}: ${summary}; in ${failures.join(', ')}`] })
    expect(code, `schemathesis reports problems (exit ${code}); its output:\n${output.slice(-20_000)}`).toBe(0)
  } finally {
    await svc?.stop('SIGKILL')
    await dir.remove()
  }
})
