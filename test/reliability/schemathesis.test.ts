/**
 * schemathesis (PyPI, 4.x) over the running service's own OpenAPI document, with all its checks:
 * the document must describe exactly what the server accepts and answers (statuses, headers,
 * content types), and the server must never answer 500. Bounded by examples per operation and a
 * time limit on the process.
 *
 * Every check runs (`--checks all`). Two of them have nothing to look at here, said so rather than
 * excluded: `ignored_auth` and `object_level_authorization` need security schemes, and the
 * anonymous disk service declares none. Every warning fails the run too (schemathesis.toml's
 * `fail-on`, and the output is read for them here): "an operation mostly refused the requests the
 * document allows" is the document and the server disagreeing. schemathesis/schemathesis.toml
 * widens the statuses of the rejection checks where tus mandates its own (412, 413, 415, 460) and
 * where a form is refused part by part; schemathesis/hooks.py gives generators for tus's upload data
 * and Upload-Metadata, and makes positive requests that refer to stored state or to their own body
 * meaningful (each rule in it says why a schema cannot): preconditions, digests, upload ids, cursors.
 */
import { spawn } from 'node:child_process'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, test } from 'vitest'
import { requireBinary } from '../helpers/external.js'
import type { ProcessService } from '../helpers/process-service.js'
import { newSecret, type Receiver, startReceiver } from '../helpers/webhook-receiver.js'
import { report, startBuilt, tempDir, trackPeakRss } from './harness.js'
import { SCHEMATHESIS } from './knobs.js'

const SETTINGS = fileURLToPath(new URL('./schemathesis', import.meta.url))
const DEFAULT_BIN = join(process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache/filestorage'), 'venv/bin/schemathesis')

let svc: ProcessService | undefined
let receiver: Receiver | undefined
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

/**
 * The warnings of schemathesis's summary ("Warnings:" and one "⚠️ ..." line each), and any the last
 * line counts ("1 warning in 60.05s") that the block did not show.
 */
function warningsOf(output: string): string[] {
  const block = /^Warnings:\n((?:[ \t]+\S.*\n?)+)/m.exec(output)?.[1] ?? ''
  const listed = block.split('\n').map((line) => line.replace(/^\s*⚠️\s*/u, '').trim()).filter(Boolean)
  const last = output.trim().split('\n').slice(-1)[0] ?? ''
  return listed.length === 0 && /warning/i.test(last) ? [last.replace(/^=+\s*|\s*=+$/g, '')] : listed
}

test('schemathesis with all its checks finds nothing in the disk service and its OpenAPI document', async (ctx) => {
  const bin = requireBinary('SCHEMATHESIS_BIN', [DEFAULT_BIN], 'schemathesis')
  if (!bin) {
    ctx.skip()
    return
  }
  const dir = await tempDir('schemathesis')
  try {
    // With events on (to a receiver here), so that their admin routes answer what they are for.
    const secret = newSecret()
    receiver = await startReceiver([secret])
    svc = await startBuilt({ STORAGE_DIR: join(dir.path, 'data'), WEBHOOK_URL: receiver.url, WEBHOOK_SECRET: secret })
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
    const warnings = warningsOf(output)
    console.log(`[reliability] schemathesis ${SCHEMATHESIS.version} (${args.slice(5).join(' ')}): ${summary}`)
    const failed = [
      ...(code === 0 ? [] : [`exit ${code}: ${summary}; in ${failures.join(', ')}`]),
      ...warnings.map((w) => `warning: ${w}`),
    ]
    await report('schemathesis', { peakRssMiB, failed })
    expect(code, `schemathesis reports problems (exit ${code}); its output:\n${output.slice(-20_000)}`).toBe(0)
    expect(warnings, `schemathesis warns; its output:\n${output.slice(-20_000)}`).toEqual([])
  } finally {
    await svc?.stop('SIGKILL')
    await receiver?.close()
    await dir.remove()
  }
})
