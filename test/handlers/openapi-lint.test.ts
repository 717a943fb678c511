/**
 * The OpenAPI document passes @redocly/cli's recommended rules (redocly.yaml), with access control
 * on and without it: the document tools and code generators read is valid and says who may call what.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTokenVerifier, tokenAuthorizer } from '../../src/auth/index.js'
import { createFileStorageApp } from '../../src/handlers/index.js'
import { DiskDriver, StoreRegistry } from '../../src/storage/index.js'

const run = promisify(execFile)
const REDOCLY = join(import.meta.dirname, '../../node_modules/.bin/redocly')
const CONFIG = join(import.meta.dirname, '../../redocly.yaml')

interface LintProblem {
  ruleId: string
  severity: 'error' | 'warn'
  message: string
  location: { pointer: string }[]
}

describe('OpenAPI document under @redocly/cli lint (recommended rules)', () => {
  let dir: string
  let stores: StoreRegistry
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-openapi-lint-'))
    stores = new StoreRegistry({ disk: await DiskDriver.open({ dir: join(dir, 'store') }) })
  })
  afterAll(async () => rm(dir, { recursive: true, force: true }))

  async function lint(app: ReturnType<typeof createFileStorageApp>, name: string): Promise<LintProblem[]> {
    const res = await app.request('/filestorage/v1/openapi.json')
    expect(res.status).toBe(200)
    const file = join(dir, `${name}.json`)
    await writeFile(file, await res.text())
    // redocly exits 1 when it finds errors; the JSON report is on stdout either way.
    const { stdout } = await run(REDOCLY, ['lint', '--config', CONFIG, '--format', 'json', file], {
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
    const problems = (JSON.parse(stdout) as { problems: LintProblem[] }).problems
    for (const p of problems) console.log(`[redocly ${name}] ${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)
    return problems
  }

  const errors = (problems: LintProblem[]) => problems.filter((p) => p.severity === 'error').map((p) => `${p.ruleId} ${p.location[0]?.pointer}`)

  it('has no errors with token access control: every operation says its security', { timeout: 120_000 }, async () => {
    const access = { authorizer: tokenAuthorizer(createTokenVerifier({ hmacSecrets: [{ kid: 'k1', secret: randomBytes(32).toString('hex') }] })) }
    expect(errors(await lint(createFileStorageApp({ stores, access }), 'token'))).toEqual([])
  })

  it('has no errors without an authorizer (anonymous)', { timeout: 120_000 }, async () => {
    expect(errors(await lint(createFileStorageApp({ stores }), 'anonymous'))).toEqual([])
  })
})
