/**
 * Large disk-store downloads on Bun go out through Bun.file (sendfile, src/adapters/bun/local-files.ts),
 * not through the handler's stream. The same requests against the node adapter and the bun adapter
 * must get the same answers: status, headers and bytes, for whole files, ranges, conditionals and
 * dispositions (Bun applies ranges and adds a Content-Disposition of its own to the files it sends;
 * both are kept out). And a download always sends one whole version while the file is replaced.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RawResponse, rawRequest } from '../helpers/http.js'
import { BUN } from '../helpers/process-service.js'
import { type HttpService, startServiceOn } from '../helpers/test-service.js'

const MiB = 1024 * 1024
const FILES = {
  'big.bin': randomBytes(3 * MiB),
  'notes.txt': Buffer.from('some text\n'.repeat(220_000)),
  'page.html': Buffer.from(`<html>${'x'.repeat(2 * MiB)}</html>`),
}

describe.runIf(BUN)('the bun adapter', () => {
  let node: HttpService
  let bun: HttpService
  beforeAll(async () => {
    ;[node, bun] = await Promise.all([startServiceOn('node'), startServiceOn('bun')])
    for (const svc of [node, bun]) {
      for (const [name, bytes] of Object.entries(FILES)) {
        expect((await rawRequest(svc.origin, 'PUT', `/filestorage/v1/disk/upload/${name}`, { body: bytes })).status).toBe(201)
      }
    }
  })
  afterAll(async () => Promise.all([node?.stop(), bun?.stop()]))

  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

  /** What must be equal: status, the headers a client reads, the bytes. */
  function comparable(res: RawResponse) {
    const headers: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(res.headers)) {
      // Per connection or per instance: the date, the keep-alive announcement, the upload's own time.
      if (['date', 'connection', 'keep-alive', 'last-modified'].includes(name)) continue
      headers[name] = value
    }
    // `inline` is what no Content-Disposition means (RFC 6266); Bun's answers carry it (see local-files.ts).
    if (headers['content-disposition'] === 'inline') delete headers['content-disposition']
    return { status: res.status, headers, bytes: res.body.length, sha256: sha256(res.body) }
  }

  describe('large downloads on Bun answer as on Node', () => {
    const etag = `"${sha256(FILES['big.bin'])}"`
    const cases: [string, string, string, Record<string, string>][] = [
      ['a whole file', 'GET', 'big.bin', {}],
      ['a text file', 'GET', 'notes.txt', {}],
      ['an active type (an attachment)', 'GET', 'page.html', {}],
      ['an active type asked inline', 'GET', 'page.html?disposition=inline', {}],
      ['a save-as name', 'GET', 'big.bin?disposition=attachment', {}],
      ['a range', 'GET', 'big.bin', { range: 'bytes=1000-1099999' }],
      ['an open range', 'GET', 'big.bin', { range: `bytes=${2 * MiB}-` }],
      ['a suffix range', 'GET', 'big.bin', { range: 'bytes=-1500000' }],
      ['a small range', 'GET', 'big.bin', { range: 'bytes=0-99' }],
      ['two ranges (the whole file)', 'GET', 'big.bin', { range: 'bytes=0-10,2000000-2000010' }],
      ['a malformed range (the whole file)', 'GET', 'big.bin', { range: 'bytes=x-y' }],
      ['an unsatisfiable range', 'GET', 'big.bin', { range: `bytes=${4 * MiB}-` }],
      ['a range If-Range matches', 'GET', 'big.bin', { range: 'bytes=5-1048580', 'if-range': etag }],
      ['a range If-Range does not match (the whole file)', 'GET', 'big.bin', { range: 'bytes=5-1048580', 'if-range': '"stale"' }],
      ['If-None-Match with its ETag', 'GET', 'big.bin', { 'if-none-match': etag }],
      ['If-None-Match with another', 'GET', 'big.bin', { 'if-none-match': '"other"' }],
      ['If-Modified-Since in the future', 'GET', 'big.bin', { 'if-modified-since': 'Fri, 01 Jan 2100 00:00:00 GMT' }],
      ['If-Modified-Since in the past', 'GET', 'big.bin', { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }],
      ['HEAD', 'HEAD', 'big.bin', {}],
    ]
    it.each(cases)('%s', async (what, method, target, asked) => {
      const path = `/filestorage/v1/disk/download/${target}`
      // One request id for both: each runtime says it back.
      const headers = { ...asked, 'x-request-id': `bun-downloads-${cases.findIndex(([name]) => name === what)}` }
      const [fromNode, fromBun] = await Promise.all([node, bun].map((svc) => rawRequest(svc.origin, method, path, { headers, timeoutMs: 30_000 })))
      expect(fromNode!.headers['x-request-id']).toBe(headers['x-request-id'])
      expect(comparable(fromBun!)).toEqual(comparable(fromNode!))
    })
  })

  describe('a large download on Bun while the file is replaced', () => {
    it('always sends one whole version, with its own ETag', async () => {
      const versions = [randomBytes(2 * MiB), randomBytes(2 * MiB), randomBytes(2 * MiB)]
      const known = new Set(versions.map((v) => `"${sha256(v)}"`))
      const put = (i: number) => rawRequest(bun.origin, 'PUT', '/filestorage/v1/disk/upload/churn.bin', { body: versions[i % versions.length]! })
      expect((await put(0)).status).toBeLessThan(300)
      let writes = 0
      const writer = (async () => {
        for (let i = 1; i <= 40; i++, writes++) expect((await put(i)).status).toBe(200)
      })()
      const reads: Promise<void>[] = []
      for (let i = 0; i < 40; i++) {
        reads.push(
          rawRequest(bun.origin, 'GET', '/filestorage/v1/disk/download/churn.bin', { timeoutMs: 30_000 }).then((res) => {
            expect(res.status).toBe(200)
            expect(known).toContain(res.headers.etag)
            expect(`"${sha256(res.body)}"`).toBe(res.headers.etag)
          }),
        )
        if (i % 4 === 3) await Promise.all(reads.splice(0))
      }
      await Promise.all(reads)
      await writer
      expect(writes).toBe(40)
    })
  })
})
