/**
 * The package as another project sees it: built, imported by name through its exports map, its
 * command-line client run through npx.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Imports `specifier` in a fresh Node process (outside vitest's resolver) and lists its exports. */
function exportsOf(specifier: string): string[] {
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `const m = await import(${JSON.stringify(specifier)}); console.log(JSON.stringify(Object.keys(m)))`],
    { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
  )
  return JSON.parse(out) as string[]
}

describe('package exports', () => {
  beforeAll(() => {
    // Written anew by the build, so that the bin's mode is the build's doing.
    rmSync(join(ROOT, 'dist/src/cli/main.js'), { force: true })
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'ignore', timeout: 120_000 })
  }, 150_000)

  it('exports the storage core and every handler from the package root', () => {
    const names = exportsOf('filestorage')
    for (const name of ['DiskDriver', 'MongoDriver', 'MongoConnection', 'StoreRegistry', 'StorageError', 'parsePath', 'createFileStorageApp', 'createUploadHandler', 'createDownloadHandler', 'createListHandler', 'uploadRoute']) {
      expect(names).toContain(name)
    }
  })

  it('exports events (the relay, webhooks, signing) as filestorage/events', () => {
    const names = exportsOf('filestorage/events')
    for (const name of ['EventsService', 'StoreRelay', 'WebhookEndpoint', 'RedisStream', 'webhookHeaders', 'parseSecret']) expect(names).toContain(name)
  })

  it('runs the command-line client as `npx filestorage` (the bin, built, with its shebang)', () => {
    const out = execFileSync('npx', ['--no-install', 'filestorage', '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/)
    const bin = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin.filestorage!
    expect(readFileSync(join(ROOT, bin), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node')
  })

  it('exports the parts on their own paths', () => {
    expect(exportsOf('filestorage/storage')).toContain('DiskDriver')
    expect(exportsOf('filestorage/handlers')).toContain('createMoveHandler')
    expect(exportsOf('filestorage/auth')).toEqual(expect.arrayContaining(['tokenAuthorizer', 'anonymousAuthorizer', 'createTokenVerifier', 'UrlSigner']))
    expect(exportsOf('filestorage/node')).toEqual(expect.arrayContaining(['startService', 'loadConfig', 'serve']))
    // The bun adapter's module loads anywhere (it reaches Bun's API only when it serves): its names, from Node.
    expect(exportsOf('filestorage/bun')).toEqual(expect.arrayContaining(['startService', 'serve']))
  })
})
