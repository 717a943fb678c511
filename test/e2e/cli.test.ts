/**
 * The `filestorage` command line against the service running as its own process (disk store), every
 * command run as a script would run it: as a process, with `--json` output parsed, exit codes and the
 * API's error messages checked. Interruptions are real: the CLI process is killed (SIGKILL) part-way
 * through a transfer, and run again. A loopback TCP proxy between the two counts the bytes on the wire.
 * Each CLI run is a process (of the sources compiled once: test/helpers/cli.ts); the tests that
 * run many of them have generous time limits.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as NodeWebReadableStream } from 'node:stream/web'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../src/cli/errors.js'
import { type CliExit, jsonError, jsonOut, runCli, scriptPath, spawnCli, spawnCliOnTerminal } from '../helpers/cli.js'
import { type ProcessService, spawnService } from '../helpers/process-service.js'
import { generated, sha256 } from '../helpers/streams.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { registrationEnv } from '../helpers/consul.js'
import { requireService } from '../helpers/external.js'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import type { SecretKey } from '../../src/auth/index.js'
import { tusOffset } from '../helpers/tus.js'
import { waitFor } from '../helpers/wait.js'

const MiB = 1024 * 1024
const CHUNK = 16 * MiB // the CLI's default tus chunk size

let dir: string
let svc: ProcessService
let proxy: TcpProxy
/** The CLI's environment: the service through the proxy, and a state folder of this suite's own. */
let env: Record<string, string>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'filestorage-cli-'))
  svc = await spawnService({ STORAGE_DIR: join(dir, 'store') })
  proxy = await startTcpProxy(svc.port)
  env = { FILESTORAGE_URL: proxy.origin, FILESTORAGE_STATE_DIR: join(dir, 'state') }
})
afterAll(async () => {
  await proxy?.close()
  await svc?.stop()
  await rm(dir, { recursive: true, force: true })
})

const cli = (...args: string[]) => runCli(args, env)

function expectOk(run: CliExit): void {
  expect(run.code, run.stderr).toBe(0)
}

/** A file of `size` pseudo-random bytes on disk (never whole in memory), with its sha256. */
async function sourceFile(path: string, size: number, seed: number): Promise<string> {
  const g = generated(size, seed)
  await pipeline(Readable.fromWeb(g.stream as unknown as NodeWebReadableStream<Uint8Array>), createWriteStream(path))
  return g.digest()
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

async function remoteInfo(path: string): Promise<{ size: number; sha256: string }> {
  const res = await fetch(`${svc.api}/disk/info/${path}`)
  expect(res.status, await res.clone().text()).toBe(200)
  return (await res.json()) as { size: number; sha256: string }
}

async function putRemote(path: string, body: Uint8Array | ReadableStream<Uint8Array>): Promise<void> {
  const res = await fetch(`${svc.api}/disk/upload/${path}`, { method: 'PUT', body, duplex: 'half' } as RequestInit)
  expect(res.status, await res.clone().text()).toBeLessThan(300)
}

/** The state file tus-js-client keeps the upload URLs of unfinished `put`s in. */
async function pendingUploads(): Promise<{ uploadUrl: string; size: number }[]> {
  const text = await readFile(join(env.FILESTORAGE_STATE_DIR!, 'uploads.json'), 'utf8').catch(() => '{}')
  return Object.values(JSON.parse(text || '{}') as Record<string, { uploadUrl: string; size: number }>)
}

/** Waits for the process killed by a proxy trigger. */
async function killedPartWay(run: Promise<CliExit>): Promise<void> {
  const exit = await run
  expect(exit.signal, `the CLI was to be killed part-way; it ended with ${exit.code}: ${exit.stderr}`).toBe('SIGKILL')
}

describe('filestorage put: a large file through tus', () => {
  it(
    'a 64 MiB put killed half-way completes when run again, sending less than one chunk beyond what the service had, with its sha256',
    async () => {
      const size = 4 * CHUNK // four of the CLI's chunks: starting over would re-send two of them, not less than one
      const source = join(dir, 'big.bin')
      const digest = await sourceFile(source, size, 31)

      // Killed (SIGKILL: no clean-up of any kind) once half the file has gone through the proxy.
      const first = spawnCli(['put', source, 'disk:cli/big.bin'], env)
      proxy.when(proxy.received() + size / 2, () => {
        first.child.kill('SIGKILL')
        proxy.cutAll()
      })
      await killedPartWay(first.exited)

      // What the service had: asked directly (not through the proxy) at the upload URL the CLI kept.
      const pending = await pendingUploads()
      expect(pending).toHaveLength(1)
      const had = await tusOffset(pending[0]!.uploadUrl.replace(proxy.origin, svc.origin))
      expect(had).toBeGreaterThan(0)
      expect(had).toBeLessThan(size)

      const before = proxy.received()
      const second = await cli('--json', 'put', source, 'disk:cli/big.bin')
      expectOk(second)
      const sent = proxy.received() - before
      const { files, failed } = jsonOut<{ files: { path: string; via: string; resumedFrom: number; sha256: string; size: number }[]; failed: unknown[] }>(second)
      expect(failed).toEqual([])
      expect(files).toEqual([expect.objectContaining({ path: 'cli/big.bin', via: 'tus', resumedFrom: had, size, sha256: digest })])
      console.log(`[cli put] 64 MiB killed after ${had} B had arrived; the second run sent ${sent} B, ${sent - (size - had)} B beyond the rest`)
      expect(sent).toBeGreaterThanOrEqual(size - had)
      expect(sent - (size - had)).toBeLessThan(CHUNK)
      expect(await remoteInfo('cli/big.bin')).toMatchObject({ size, sha256: digest })
      expect(await pendingUploads()).toEqual([])
      expect(second.stderr).toBe('') // no progress bar: stdout and stderr are pipes here
    },
    300_000,
  )
  it('SIGINT stops a put, exits with 130, and the next run goes on from what the service has', async () => {
    const size = 48 * MiB
    const source = join(dir, 'interrupted.bin')
    const digest = await sourceFile(source, size, 32)
    const first = spawnCli(['put', source, 'disk:cli/interrupted.bin'], env)
    proxy.when(proxy.received() + 20 * MiB, () => first.child.kill('SIGINT'))
    const stopped = await first.exited
    expect(stopped.code, stopped.stderr).toBe(EXIT.interrupted)
    expect(stopped.stderr).toContain('interrupted (run the same command again to resume)')

    const second = await cli('--json', 'put', source, 'disk:cli/interrupted.bin')
    expectOk(second)
    const [file] = jsonOut<{ files: { resumedFrom: number; sha256: string }[] }>(second).files
    expect(file!.resumedFrom).toBeGreaterThan(0)
    expect(file!.sha256).toBe(digest)
  }, 120_000)
})

const script = scriptPath()

describe.runIf(script)('filestorage put on a terminal: progress bars', () => {
  it('shows a bar per file and a total with throughput and ETA, and still sends every file', async () => {
    const folder = join(dir, 'on-a-terminal')
    await mkdir(folder)
    // Two files sent in one PUT each, one larger than the 1 MiB chunk given below: through tus.
    const files = [
      { name: 'small.bin', size: 100_000 },
      { name: 'medium.bin', size: 300_000 },
      { name: 'large.bin', size: 6 * MiB },
    ]
    const digests = new Map<string, string>()
    for (const [i, f] of files.entries()) digests.set(f.name, await sourceFile(join(folder, f.name), f.size, 40 + i))

    // What a bar looks like (src/cli/progress.ts): label, bar, percentage, bytes done of the file's.
    const size = String.raw`\d+(?:\.\d+)? (?:B|KiB|MiB)`
    const fileBar = (path: string) => new RegExp(String.raw`${path}\s+\|[█░]{24}\| \d+% ${size}/${size}`)
    const totalBar = String.raw`total \(3 files\)\s+\|[█░]{24}\| \d+% ${size}/${size} (${size})/s ETA (\S+)`

    let output = ''
    const shown = (from = 0) => stripVTControlCharacters(output.slice(from))
    /** Waits (bounded) until the terminal shows what `seen` looks for, in what came after `from`. */
    const untilShown = (what: string, seen: (text: string) => boolean, from = 0) =>
      waitFor(`the terminal to show ${what}`, () => seen(shown(from)), { timeoutMs: 30_000 }).catch((e: Error) => {
        throw new Error(`${e.message}; it showed:\n${shown(from)}`)
      })

    // The transfer stands still (the proxy holds what the CLI sends) while the bars are looked at.
    proxy.when(proxy.received() + 1, () => proxy.hold())
    const run = spawnCliOnTerminal(script!, ['put', '-j', '3', '--chunk-size', '1MiB', ...files.map((f) => join(folder, f.name)), 'disk:terminal/'], env)
    run.child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 120_000)
    try {
      // Held at its first byte: a bar for each of the three files, and the total.
      await untilShown('a bar per file and the total', (text) => files.every((f) => fileBar(`terminal/${f.name}`).test(text)) && new RegExp(totalBar).test(text))
      // Held again part-way through the large file: the total shows a throughput and an ETA.
      const from = output.length
      let heldAgain = false
      proxy.when(proxy.received() + 3 * MiB, () => {
        proxy.hold()
        heldAgain = true
      })
      proxy.release()
      // Released only once held again: a release before the hold would leave the upload held for good.
      await waitFor('the proxy to hold the upload again', () => heldAgain, { timeoutMs: 30_000 })
      await untilShown(
        'a throughput and an ETA',
        (text) => [...text.matchAll(new RegExp(totalBar, 'g'))].some(([, speed, eta]) => !speed!.startsWith('0 B') && /^(\d+h\d+m|(\d+m)?\d+s)$/.test(eta!.trim())),
        from,
      )
      proxy.release()
      const exit = await run.exited
      expect(exit.code, shown()).toBe(0)
    } finally {
      clearTimeout(timer)
      proxy.when(Number.POSITIVE_INFINITY, () => {}) // a hold not reached (the test failed) must not catch the next test
      proxy.release()
    }
    expect(shown()).toMatch(/uploaded 3 of 3 files \(.+ sent in [\d.]+ s\) to disk:terminal/)
    for (const f of files) expect(await remoteInfo(`terminal/${f.name}`)).toMatchObject({ size: f.size, sha256: digests.get(f.name) })
  }, 180_000)
})

describe('filestorage put -r / get -r: a folder tree', () => {
  it('200 files (some through tus) round-trip byte for byte', async () => {
    const tree = join(dir, 'tree')
    const files = new Map<string, Buffer>()
    for (let i = 0; i < 200; i++) {
      const name = `d${i % 7}/${i % 3 === 0 ? `e${i % 5}/` : ''}file ${i}${i % 10 === 0 ? ' é' : ''}.bin`
      // A few larger than the 1 MiB chunk given below, so they go through tus, in parallel with the rest.
      const size = i % 50 === 0 ? 1 * MiB + 12_345 * (i + 1) : i === 1 ? 0 : (i * 7919) % 20_000
      files.set(name, randomBytes(size))
    }
    for (const [name, bytes] of files) {
      await mkdir(join(tree, name, '..'), { recursive: true })
      await writeFile(join(tree, name), bytes)
    }

    const put = await cli('--json', 'put', '-r', '-j', '6', '--chunk-size', '1MiB', tree, 'disk:trees/one')
    expectOk(put)
    const sent = jsonOut<{ files: { path: string; via: string; size: number }[]; failed: unknown[] }>(put)
    expect(sent.failed).toEqual([])
    expect(sent.files.map((f) => f.path).sort()).toEqual([...files.keys()].map((n) => `trees/one/${n.normalize('NFC')}`).sort())
    expect(sent.files.filter((f) => f.via === 'tus')).toHaveLength(4)

    const out = join(dir, 'tree-back')
    const got = await cli('--json', 'get', '-r', 'disk:trees/one', out)
    expectOk(got)
    const received = jsonOut<{ files: { target: string; sha256: string }[]; failed: unknown[] }>(got)
    expect(received.failed).toEqual([])
    expect(received.files).toHaveLength(200)

    const back = (await readdir(out, { recursive: true, withFileTypes: true })).filter((e) => e.isFile())
    expect(back.map((e) => relative(out, join(e.parentPath, e.name))).sort()).toEqual([...files.keys()].sort())
    for (const [name, bytes] of files) expect((await readFile(join(out, name))).equals(bytes), name).toBe(true)
  }, 240_000)
})

describe('filestorage get: a cut download', () => {
  const size = 64 * MiB

  /** Starts `get` and kills it once `bytes` of the answer went through the proxy; returns the partial file's size. */
  async function cutGet(path: string, target: string, bytes: number): Promise<number> {
    const run = spawnCli(['get', `disk:${path}`, target], env)
    proxy.whenSent(proxy.sent() + bytes, () => {
      run.child.kill('SIGKILL')
      proxy.cutAll()
    })
    await killedPartWay(run.exited)
    return (await stat(`${target}.filestorage-partial`)).size
  }

  it('goes on from the bytes it has (Range + If-Range) when run again', async () => {
    const content = generated(size, 41)
    await putRemote('cli/download.bin', content.stream)
    const digest = content.digest()
    const target = join(dir, 'download.bin')

    const have = await cutGet('cli/download.bin', target, size / 3)
    expect(have).toBeGreaterThan(0)
    expect(have).toBeLessThan(size)

    const before = proxy.sent()
    const run = await cli('--json', 'get', 'disk:cli/download.bin', target)
    expectOk(run)
    const answered = proxy.sent() - before
    const { files } = jsonOut<{ files: { resumedFrom: number; sha256: string; size: number }[] }>(run)
    expect(files).toEqual([expect.objectContaining({ resumedFrom: have, sha256: digest, size })])
    console.log(`[cli get] 64 MiB cut with ${have} B on disk; the second run received ${answered} B`)
    // Only the rest came again (and the answers' headers): a Range request, honoured.
    expect(answered).toBeGreaterThanOrEqual(size - have)
    expect(answered - (size - have)).toBeLessThan(64 * 1024)
    expect(await sha256OfFile(target)).toBe(digest)
    await expect(stat(`${target}.filestorage-partial`)).rejects.toThrow()
  }, 180_000)

  it('starts over when the file changed since the cut (If-Range on the ETag)', async () => {
    await putRemote('cli/changing.bin', generated(size, 42).stream)
    const target = join(dir, 'changing.bin')
    const have = await cutGet('cli/changing.bin', target, size / 3)
    expect(have).toBeGreaterThan(0)

    // Same size, other bytes: only the ETag tells the partial bytes are of another version.
    const next = generated(size, 43)
    await putRemote('cli/changing.bin', next.stream)
    const run = await cli('--json', 'get', 'disk:cli/changing.bin', target)
    expectOk(run)
    expect(jsonOut<{ files: { resumedFrom: number }[] }>(run).files[0]!.resumedFrom).toBe(0)
    expect(await sha256OfFile(target)).toBe(next.digest())
  }, 180_000)
})

describe('filestorage: every command with --json', () => {
  it('ls, stat, cat, mv, rm, put and get print what a script can parse', async () => {
    const local = join(dir, 'small.txt')
    await writeFile(local, 'hello, cli\n')

    const put = await cli('--json', 'put', local, 'disk:json/a/')
    expectOk(put)
    expect(jsonOut(put)).toMatchObject({ files: [{ store: 'disk', path: 'json/a/small.txt', size: 11, via: 'put', source: local }], failed: [] })

    const ls = await cli('--json', 'ls', 'disk:json')
    expectOk(ls)
    expect(jsonOut(ls)).toEqual({ entries: [expect.objectContaining({ type: 'directory', path: 'json/a', store: 'disk' })] })
    const lsr = await cli('--json', 'ls', '-r', 'disk:json')
    expect(jsonOut(lsr)).toEqual({ entries: [expect.objectContaining({ type: 'file', path: 'json/a/small.txt', sha256: sha256('hello, cli\n') })] })

    const st = await cli('--json', 'stat', 'disk:json/a/small.txt')
    expect(jsonOut(st)).toMatchObject({ type: 'file', path: 'json/a/small.txt', size: 11, contentType: expect.stringMatching(/^text\/plain/) })

    const cat = await cli('--json', 'cat', 'disk:json/a/small.txt') // the bytes themselves: --json changes only errors
    expectOk(cat)
    expect(cat.stdout.toString()).toBe('hello, cli\n')

    const mv = await cli('--json', 'mv', 'disk:json/a/small.txt', 'disk:json/b.txt')
    expectOk(mv)
    expect(jsonOut(mv)).toMatchObject({ type: 'file', path: 'json/b.txt', store: 'disk' })

    const get = await cli('--json', 'get', 'disk:json/b.txt', join(dir, 'b.txt'))
    expectOk(get)
    expect(jsonOut(get)).toMatchObject({ files: [{ store: 'disk', path: 'json/b.txt', target: join(dir, 'b.txt'), size: 11, resumedFrom: 0 }], failed: [] })

    const rm = await cli('--json', 'rm', '-r', 'disk:json')
    expectOk(rm)
    expect(jsonOut(rm)).toEqual({ deleted: [{ store: 'disk', path: 'json' }], failed: [] })
  }, 300_000)
})

describe('filestorage: exit codes and the API error', () => {
  it('a missing file: 3, with the API error', async () => {
    for (const args of [['stat', 'disk:no/such.txt'], ['cat', 'disk:no/such.txt'], ['get', 'disk:no/such.txt', join(dir, 'x')], ['rm', 'disk:no/such.txt'], ['ls', 'disk:no/such']]) {
      const run = await cli('--json', ...args)
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(EXIT.notFound)
      expect(jsonError(run)).toMatchObject({ exitCode: EXIT.notFound, status: 404, code: 'not_found', message: expect.stringContaining('no/such') })
    }
    const human = await cli('stat', 'disk:no/such.txt')
    expect(human.code).toBe(EXIT.notFound)
    expect(human.stderr).toMatch(/^filestorage: .*no\/such\.txt.* \(404 not_found\)\n$/)
    expect((await cli('rm', '-f', 'disk:no/such.txt')).code).toBe(EXIT.ok)
    const local = await cli('--json', 'put', join(dir, 'no-such-local-file'), 'disk:x')
    expect(local.code).toBe(EXIT.notFound)
    expect(jsonError(local).code).toBe('local_not_found')
  }, 300_000)

  it('a refused write: 4, with the API error (412 on put -n, 409 on mv and rm)', async () => {
    const local = join(dir, 'refused.txt')
    await writeFile(local, 'first')
    expectOk(await cli('put', local, 'disk:refused/a.txt'))
    expectOk(await cli('put', local, 'disk:refused/b.txt'))

    const noClobber = await cli('--json', 'put', '-n', local, 'disk:refused/a.txt')
    expect(noClobber.code).toBe(EXIT.conflict)
    expect(jsonError(noClobber)).toMatchObject({ status: 412, code: 'precondition_failed', subject: local })
    const big = join(dir, 'refused-big.bin') // through tus: If-None-Match on the creation
    await writeFile(big, randomBytes(2 * MiB))
    expectOk(await cli('put', '--chunk-size', '1MiB', big, 'disk:refused/big.bin'))
    const tusNoClobber = await cli('--json', 'put', '-n', '--chunk-size', '1MiB', big, 'disk:refused/big.bin')
    expect(tusNoClobber.code).toBe(EXIT.conflict)
    expect(jsonError(tusNoClobber)).toMatchObject({ status: 412, code: 'precondition_failed' })

    const mv = await cli('--json', 'mv', 'disk:refused/a.txt', 'disk:refused/b.txt')
    expect(mv.code).toBe(EXIT.conflict)
    expect(jsonError(mv)).toMatchObject({ status: 409, code: 'already_exists', message: expect.stringContaining('refused/b.txt') })
    expectOk(await cli('mv', '-f', 'disk:refused/a.txt', 'disk:refused/b.txt'))

    const rmFolder = await cli('rm', 'disk:refused')
    expect(rmFolder.code).toBe(EXIT.conflict)
    expect(rmFolder.stderr).toContain('(409 directory_not_empty)')
    expect(await remoteInfo('refused/b.txt')).toMatchObject({ size: 5 })
  }, 300_000)

  it('usage errors: 2; no service: 8', async () => {
    for (const args of [['bogus'], ['put', 'only-one-arg'], ['ls', 'not-remote'], ['put', '-j', '0', 'a', 'disk:b'], ['get', 'disk:a', 'disk:b']]) {
      const run = await cli('--json', ...args)
      expect(run.code, args.join(' ')).toBe(EXIT.usage)
      expect(jsonError(run).code).toBe('usage')
    }
    const closed = await startTcpProxy(svc.port)
    const url = closed.origin
    await closed.close() // nothing listens there any more
    const run = await runCli(['--json', 'ls', 'disk:'], { ...env, FILESTORAGE_URL: url })
    expect(run.code).toBe(EXIT.unavailable)
    expect(jsonError(run).code).toBe('store_unavailable')
  }, 180_000)
})

describe('filestorage against a service with access control (SPEC 6)', () => {
  let guarded: ProcessService
  let key: SecretKey
  const guardedCli = (token: string | undefined, ...args: string[]) =>
    runCli(token === undefined ? args : ['--token', token, ...args], { ...env, FILESTORAGE_URL: guarded.origin })

  beforeAll(async () => {
    key = hmacKey('cli-test')
    guarded = await spawnService({ STORAGE_DIR: join(dir, 'store-guarded'), AUTH_HMAC_SECRETS: keysEnv(key) })
    const res = await fetch(`${guarded.api}/disk/upload/cli/signed.txt`, {
      method: 'PUT',
      headers: bearer(await hmacToken(key, 'cli-setup', ['files:write:disk'])),
      body: 'signed bytes',
    })
    expect(res.status).toBe(201)
  })
  afterAll(async () => guarded?.stop())

  it('sign prints { url, method, expiresAt }: a URL that downloads the file without a token', async () => {
    const reader = await hmacToken(key, 'cli-reader', ['files:read:disk:cli'])
    const run = await guardedCli(reader, '--json', 'sign', 'disk:cli/signed.txt', '--expires-in', '600')
    expectOk(run)
    const signed = jsonOut<{ url: string; method: string; expiresAt: string }>(run)
    expect(signed.method).toBe('GET')
    const expiresIn = (Date.parse(signed.expiresAt) - Date.now()) / 1000
    expect(expiresIn).toBeGreaterThan(500)
    expect(expiresIn).toBeLessThanOrEqual(601)
    expect((await fetch(`${guarded.api}/disk/download/cli/signed.txt`)).status).toBe(401) // the file needs a token...
    const res = await fetch(new URL(signed.url, guarded.origin)) // ...the signed URL does not
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('signed bytes')
    // Any change to what was signed is refused.
    expect((await fetch(new URL(signed.url, guarded.origin).href.replace('signed.txt', 'other.txt'))).status).toBe(403)

    const plain = await guardedCli(reader, 'sign', 'disk:cli/signed.txt')
    expectOk(plain)
    expect(plain.stdout.toString().trim()).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/filestorage\/v1\/disk\/download\/cli\/signed\.txt\?.*sig=/)

    // Signing needs the right the URL grants: a token that may only write cannot sign a download.
    const writer = await hmacToken(key, 'cli-writer', ['files:write:disk'])
    const refused = await guardedCli(writer, '--json', 'sign', 'disk:cli/signed.txt')
    expect(refused.code).toBe(EXIT.forbidden)
    expect(jsonError(refused)).toMatchObject({ status: 403, code: 'forbidden', message: expect.any(String) })
  }, 60_000)

  it('a bad or missing token: 5, a token without the right: 6, each with the API error', async () => {
    const bad = await guardedCli('not-a-valid-token', '--json', 'ls', 'disk:')
    expect(bad.code).toBe(EXIT.unauthorized)
    expect(jsonError(bad)).toMatchObject({ exitCode: EXIT.unauthorized, status: 401, code: 'unauthorized', message: expect.any(String) })
    // Signed with a key the service does not hold.
    const forged = await guardedCli(await hmacToken(hmacKey('cli-test'), 'mallory', ['files:*:disk']), '--json', 'cat', 'disk:cli/signed.txt')
    expect(forged.code).toBe(EXIT.unauthorized)
    expect(jsonError(forged)).toMatchObject({ status: 401, code: 'unauthorized' })
    const none = await guardedCli(undefined, '--json', 'stat', 'disk:cli/signed.txt')
    expect(none.code).toBe(EXIT.unauthorized)
    expect(jsonError(none)).toMatchObject({ status: 401, code: 'unauthorized' })
    const human = await guardedCli('not-a-valid-token', 'ls', 'disk:')
    expect(human.code).toBe(EXIT.unauthorized)
    expect(human.stderr).toMatch(/^filestorage: .+ \(401 unauthorized\)\n$/)

    const readerElsewhere = await hmacToken(key, 'cli-other', ['files:read:disk:elsewhere'])
    const local = join(dir, 'forbidden.txt')
    await writeFile(local, 'nope')
    for (const args of [['cat', 'disk:cli/signed.txt'], ['put', local, 'disk:cli/forbidden.txt'], ['rm', 'disk:cli/signed.txt']]) {
      const run = await guardedCli(readerElsewhere, '--json', ...args)
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(EXIT.forbidden)
      expect(jsonError(run)).toMatchObject({ exitCode: EXIT.forbidden, status: 403, code: 'forbidden', message: expect.any(String) })
    }
    // Nothing was changed by the refused commands; the right token does it all.
    const owner = await hmacToken(key, 'cli-owner', ['files:*:disk:cli'])
    const cat = await guardedCli(owner, 'cat', 'disk:cli/signed.txt')
    expectOk(cat)
    expect(cat.stdout.toString()).toBe('signed bytes')
    const ls = await guardedCli(owner, '--json', 'ls', 'disk:cli')
    expectOk(ls)
    expect(jsonOut<{ entries: { path: string }[] }>(ls).entries.map((e) => e.path)).toEqual(['cli/signed.txt'])
  }, 120_000)
})

const consulAddr = requireService('CONSUL_HTTP_ADDR', 'CLI discovery')

describe.runIf(consulAddr)('filestorage with Consul discovery', () => {
  it('finds the service by name through CONSUL_HTTP_ADDR', async () => {
    const name = `cli-${randomBytes(4).toString('hex')}`
    const registered = await spawnService(registrationEnv(consulAddr!, name, join(dir, 'store-consul')))
    try {
      await waitFor(`a passing instance of ${name}`, async () => {
        const res = await fetch(`http://${consulAddr}/v1/health/service/${name}?passing=true`)
        return ((await res.json()) as unknown[]).length === 1
      })
      const local = join(dir, 'by-name.txt')
      await writeFile(local, 'found by name')
      const consulEnv = { FILESTORAGE_STATE_DIR: env.FILESTORAGE_STATE_DIR!, CONSUL_HTTP_ADDR: consulAddr!, FILESTORAGE_SERVICE: name }
      expectOk(await runCli(['put', local, 'disk:consul/'], consulEnv))
      const run = await runCli(['--json', 'ls', 'disk:consul'], consulEnv)
      expectOk(run)
      expect(jsonOut(run)).toEqual({ entries: [expect.objectContaining({ path: 'consul/by-name.txt', size: 13 })] })
      expect(await (await fetch(`${registered.api}/disk/download/consul/by-name.txt`)).text()).toBe('found by name')

      const unknown = await runCli(['--json', '--service', `${name}-nobody`, 'ls', 'disk:'], consulEnv)
      expect(unknown.code).toBe(EXIT.unavailable)
      expect(jsonError(unknown).code).toBe('no_instances')
    } finally {
      await registered.stop()
    }
  }, 60_000)
})
