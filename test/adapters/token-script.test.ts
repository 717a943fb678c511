/**
 * `npm run token` as a developer runs it: a real `npm run --silent token -- ...` process with
 * AUTH_HMAC_SECRETS in its environment prints a token that a service sharing those secrets accepts
 * with exactly the rights asked for, no more; without the secrets, or without a right, it exits
 * non-zero saying what is missing and prints no token.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, hmacKey, hmacToken, keysEnv } from '../helpers/auth.js'
import { startTestService, type TestService } from '../helpers/test-service.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const current = hmacKey('current')
const previous = hmacKey('previous')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** `npm run --silent token -- ...args` with `env` on top of an environment free of any AUTH_* variable. */
function npmRunToken(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AUTH_')))
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'token', '--', ...args], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('npm run token', () => {
  let svc: TestService
  let token: string
  beforeAll(async () => {
    const secrets = keysEnv(current, previous)
    svc = await startTestService({ AUTH_HMAC_SECRETS: secrets })
    const run = await npmRunToken(['--sub', 'ana', '--all', 'users/ana', '--read', 'public', 'files:write:disk:inbox', '--expires', '30m'], {
      AUTH_HMAC_SECRETS: secrets,
    })
    expect(run, run.stderr).toMatchObject({ code: 0 })
    token = run.stdout.trim()
    // The files the rights are tried on, put there by someone allowed everything.
    const admin = await hmacToken(previous, 'admin', ['files:*:*:'])
    for (const path of ['users/ana/mine.txt', 'users/anabel/hers.txt', 'public/notice.txt', 'inbox/earlier.txt', 'elsewhere.txt']) {
      expect((await send(admin, 'PUT', 'upload', path)).status).toBe(201)
    }
  }, 60_000)
  afterAll(async () => svc?.stop())

  const send = (credential: string, method: string, verb: string, path: string) =>
    fetch(`${svc.api}/disk/${verb}/${path}`, { method, headers: bearer(credential), ...(method === 'PUT' ? { body: `bytes of ${path}` } : {}) })

  it('prints one token, signed with the first of AUTH_HMAC_SECRETS, holding the subject, the rights and the lifetime asked for', () => {
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'HS256', kid: current.kid })
    const claims = decodeJwt(token)
    expect(claims.sub).toBe('ana')
    expect(String(claims.scope).split(' ').sort()).toEqual(['files:*:disk:users/ana', 'files:read:disk:public', 'files:write:disk:inbox'])
    expect(claims.exp! - claims.iat!).toBe(30 * 60)
  })

  it('is accepted by the service with exactly those rights', async () => {
    const allowed: [string, string, string][] = [
      ['GET', 'download', 'users/ana/mine.txt'],
      ['PUT', 'upload', 'users/ana/new.txt'],
      ['DELETE', 'delete', 'users/ana/new.txt'],
      ['GET', 'download', 'public/notice.txt'],
      ['PUT', 'upload', 'inbox/dropped.txt'],
    ]
    for (const [method, verb, path] of allowed) expect((await send(token, method, verb, path)).status, `${method} ${verb} ${path}`).toBeLessThan(300)
    const refused: [string, string, string][] = [
      ['GET', 'download', 'users/anabel/hers.txt'], // a sibling of users/ana
      ['PUT', 'upload', 'public/notice.txt'], // read only
      ['DELETE', 'delete', 'public/notice.txt'],
      ['GET', 'download', 'inbox/earlier.txt'], // write only
      ['DELETE', 'delete', 'inbox/earlier.txt'],
      ['GET', 'download', 'elsewhere.txt'],
    ]
    for (const [method, verb, path] of refused) expect((await send(token, method, verb, path)).status, `${method} ${verb} ${path}`).toBe(403)
  })

  it('exits non-zero without AUTH_HMAC_SECRETS, saying how to set it, and prints no token', async () => {
    const run = await npmRunToken(['--sub', 'ana', '--all', 'users/ana'])
    expect(run.code).not.toBe(0)
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain('token: AUTH_HMAC_SECRETS is not set (e.g. export AUTH_HMAC_SECRETS=')
  })

  it('exits non-zero without a right, or with a secret the service would refuse, naming the problem', async () => {
    const noRight = await npmRunToken(['--sub', 'ana'], { AUTH_HMAC_SECRETS: keysEnv(current) })
    expect(noRight).toMatchObject({ stdout: '' })
    expect(noRight.code).not.toBe(0)
    expect(noRight.stderr).toContain('give at least one right')
    const weak = await npmRunToken(['--all', ''], { AUTH_HMAC_SECRETS: 'dev:too-short' })
    expect(weak).toMatchObject({ stdout: '' })
    expect(weak.code).not.toBe(0)
    expect(weak.stderr).toContain('AUTH_HMAC_SECRETS (value not shown): the secret of "dev" is shorter than 32 bytes')
    expect(weak.stderr).not.toContain('too-short')
  })
})
