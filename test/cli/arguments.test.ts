/** The CLI's pure parts: how a remote path is read, and which exit code a failure gets. */
import { CommanderError } from 'commander'
import { describe, expect, it } from 'vitest'
import { DiscoveryError, FileStorageError } from '../../src/adapters/discovery/index.js'
import { EXIT, reportOf } from '../../src/cli/errors.js'
import { parseRemote } from '../../src/cli/remote-path.js'

describe('remote paths (STORE:PATH)', () => {
  it('reads the store, the path and whether it names a folder', () => {
    expect(parseRemote('disk:reports/a.pdf')).toEqual({ store: 'disk', path: 'reports/a.pdf', folder: false })
    expect(parseRemote('disk:reports/')).toEqual({ store: 'disk', path: 'reports', folder: true })
    expect(parseRemote('disk:')).toEqual({ store: 'disk', path: '', folder: true })
    expect(parseRemote('disk:/a//')).toEqual({ store: 'disk', path: 'a', folder: true })
    expect(parseRemote('my-store_2:a:b.txt')).toEqual({ store: 'my-store_2', path: 'a:b.txt', folder: false })
  })

  it('leaves local paths alone, colons included when written ./a:b', () => {
    for (const local of ['a.pdf', './a:b', '/tmp/a:b', '../x:y', 'dir/a:b', '.hidden:x']) expect(parseRemote(local), local).toBeUndefined()
  })
})

describe('exit codes', () => {
  const api = (status: number, code: string) => reportOf(new FileStorageError(status, code, 'message'))

  it('follow the API error', () => {
    expect(api(404, 'not_found').exitCode).toBe(EXIT.notFound)
    expect(api(404, 'unknown_store').exitCode).toBe(EXIT.notFound)
    expect(api(409, 'already_exists').exitCode).toBe(EXIT.conflict)
    expect(api(412, 'precondition_failed').exitCode).toBe(EXIT.conflict)
    expect(api(401, 'unauthorized').exitCode).toBe(EXIT.unauthorized)
    expect(api(403, 'forbidden').exitCode).toBe(EXIT.forbidden)
    expect(api(400, 'invalid_path').exitCode).toBe(EXIT.invalid)
    expect(api(400, 'checksum_mismatch').exitCode).toBe(EXIT.integrity)
    expect(api(503, 'store_unavailable').exitCode).toBe(EXIT.unavailable)
    expect(api(507, 'insufficient_storage').exitCode).toBe(EXIT.noSpace)
    expect(api(403, 'quota_exceeded').exitCode).toBe(EXIT.noSpace)
    expect(api(429, 'rate_limited').exitCode).toBe(EXIT.unavailable)
    expect(api(500, 'internal')).toMatchObject({ exitCode: EXIT.failure, status: 500, code: 'internal', message: 'message' })
  })

  it('name the failures that are not the API', () => {
    expect(reportOf(new DiscoveryError('no_instances', 'none')).exitCode).toBe(EXIT.unavailable)
    expect(reportOf(new CommanderError(1, 'commander.unknownOption', "error: unknown option '-x'"))).toMatchObject({ exitCode: EXIT.usage, message: "unknown option '-x'" })
    expect(reportOf(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' }))).toMatchObject({ exitCode: EXIT.notFound, code: 'local_not_found' })
    expect(reportOf(new DOMException('interrupted', 'AbortError')).exitCode).toBe(EXIT.interrupted)
  })
})
