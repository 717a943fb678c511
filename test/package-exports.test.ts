/**
 * The package as another project sees it: built, imported by name through its exports map.
 */
import { execFileSync } from 'node:child_process'
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
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'ignore', timeout: 120_000 })
  }, 150_000)

  it('exports the storage core and every handler from the package root', () => {
    const names = exportsOf('filestorage')
    for (const name of ['DiskDriver', 'MongoDriver', 'MongoConnection', 'StoreRegistry', 'StorageError', 'parsePath', 'createFileStorageApp', 'createUploadHandler', 'createDownloadHandler', 'createListHandler', 'uploadRoute']) {
      expect(names).toContain(name)
    }
  })

  it('exports the parts on their own paths', () => {
    expect(exportsOf('filestorage/storage')).toContain('DiskDriver')
    expect(exportsOf('filestorage/handlers')).toContain('createMoveHandler')
    expect(exportsOf('filestorage/node')).toEqual(expect.arrayContaining(['startService', 'loadConfig', 'serve']))
  })
})
