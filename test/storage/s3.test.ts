/**
 * The s3 driver on the run's SeaweedFS: the storage contract, then what only an object store shows,
 * looked at from outside with another S3 client as an operator's tools would: one object per file,
 * metadata within S3's limits, objects other tools wrote, versions written in parts and their
 * digests (a reader racing a writer), leftovers and the sweep, conditional writes and a server
 * without them, moves by copy and by RenameObject, composition of staged parts, and an S3 that does
 * not answer.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer as createHttpServer, request as httpRequest } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { S3Driver, type StoredFile } from '../../src/storage/index.js'
import { planPieces } from '../../src/storage/s3/compose.js'
import { expectCode } from '../helpers/expect-error.js'
import { openMultipartUploads, openS3Store, outsideClient, type S3Store, s3TestTarget } from '../helpers/s3-store.js'
import { runStoreChild } from '../helpers/store-children.js'
import { failingAfter, generated, generatedSha256, readAll, sha256, streamOf } from '../helpers/streams.js'
import { CONTRACT_POLICY, describeStorageContract } from './contract.js'

const target = s3TestTarget()
const MiB = 1024 * 1024
const HOUR = 60 * 60 * 1000
/** A store whose bodies over 5 MiB go up in parts of 5 MiB (S3's smallest). */
const SMALL_PARTS = { partSize: 5 * MiB }

describe.runIf(target !== undefined)('s3 store', () => {
  describeStorageContract('s3', { open: async (policy) => openS3Store(target!, { uploads: policy }) })

  describe('s3 driver on its own', () => {
    let outside: S3Client
    const stores: S3Store[] = []
    const open = (options: Parameters<typeof openS3Store>[1] = {}) => {
      const store = openS3Store(target!, { uploads: CONTRACT_POLICY, ...options })
      stores.push(store)
      return store
    }
    beforeAll(() => {
      outside = outsideClient(target!)
    })
    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()))
      outside?.destroy()
    })

    const Bucket = target?.bucket
    const keysUnder = async (Prefix: string) => {
      const keys: string[] = []
      let ContinuationToken: string | undefined
      do {
        const r = await outside.send(new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken }))
        keys.push(...(r.Contents ?? []).map((o) => o.Key!.slice(Prefix.length)))
        ContinuationToken = r.NextContinuationToken
      } while (ContinuationToken)
      return keys
    }
    /** Where a store child opens the s3 store under `prefix`. */
    const s3Where = (prefix: string) => ({ endpoint: target!.endpoint, region: target!.region, bucket: target!.bucket, prefix, accessKeyId: target!.accessKeyId, secretAccessKey: target!.secretAccessKey })
    const fileKeys = async (store: S3Store) => (await keysUnder(store.driver.keys.prefix)).filter((k) => !k.startsWith('.filestorage/'))
    const headOf = (store: S3Store, path: string) => outside.send(new HeadObjectCommand({ Bucket, Key: store.driver.keys.prefix + path, ChecksumMode: 'ENABLED' }))
    const outsideBytes = async (store: S3Store, path: string) =>
      Buffer.from(await (await outside.send(new GetObjectCommand({ Bucket, Key: store.driver.keys.prefix + path }))).Body!.transformToByteArray())
    const put = async (store: S3Store, path: string, content: string | Uint8Array, options = {}) => (await store.put(path, streamOf(content), options)).file

    describe('files as objects', () => {
      it('keeps a file as one object at its path, readable as it is by another S3 client, with S3\'s own SHA-256 of it', async () => {
        const store = open()
        const file = await put(store, 'reports/q1 été.txt', 'quarter one', { contentType: 'text/plain; charset=utf-8', metadata: { by: 'ana' } })
        expect(await fileKeys(store)).toEqual(['reports/q1 été.txt'])
        expect((await outsideBytes(store, 'reports/q1 été.txt')).toString()).toBe('quarter one')
        const head = await headOf(store, 'reports/q1 été.txt')
        expect(head.ContentType).toBe('text/plain; charset=utf-8')
        expect(Buffer.from(head.ChecksumSHA256!, 'base64').toString('hex')).toBe(file.sha256)
        expect(head.Metadata).toMatchObject({ 'fs-sha256': file.sha256, 'fs-created': file.created, 'fs-modified': file.modified })
      })

      it('keeps metadata with non-ASCII characters, blanks and percent signs exactly, as ASCII in S3', async () => {
        const store = open()
        const metadata = { city: 'Zürich', blanks: '  two  spaces  ', percent: '100% %41', emoji: '😀', quote: '"\'', nested: { list: [1, ' x '] } }
        const file = await put(store, 'meta.txt', 'x', { metadata })
        expect(file.metadata).toEqual(metadata)
        expect((await store.stat('meta.txt')).metadata).toEqual(metadata)
        const encoded = (await headOf(store, 'meta.txt')).Metadata!['fs-meta']!
        expect(encoded).toMatch(/^[\x21-\x7e]+( [\x21-\x7e]+)*$/)
      })

      it('refuses metadata beyond S3\'s 2 KB with invalid_request, before reading a byte, and at createupload', async () => {
        const store = open()
        const error = await expectCode(store.put('big.txt', failingAfter(0), { metadata: { blob: 'x'.repeat(2000) } }), 'invalid_request')
        expect(error.details).toMatchObject({ limit: expect.any(Number) as number })
        const { limit } = error.details as { limit: number }
        expect(limit).toBeGreaterThan(1700)
        // Non-ASCII counts three times per byte once encoded.
        await expectCode(store.put('big.txt', streamOf('x'), { metadata: { blob: 'é'.repeat(Math.ceil(limit / 6) + 10) } }), 'invalid_request')
        expect((await put(store, 'fits.txt', 'x', { metadata: { blob: 'x'.repeat(limit - 20) } })).metadata).toEqual({ blob: 'x'.repeat(limit - 20) })
        await expectCode(store.createUpload('big-upload.bin', { metadata: { blob: 'x'.repeat(2000) } }), 'invalid_request')
        expect(await fileKeys(store)).toEqual(['fits.txt'])
      })

      it('refuses a path whose key would pass 1,024 bytes with the prefix, and paths SeaweedFS would hide', async () => {
        const store = open({ prefix: `${'p'.repeat(200)}-${randomBytes(4).toString('hex')}/` })
        const long = Array.from({ length: 4 }, () => 'x'.repeat(200)).join('/') // 803 bytes, 1,013 with the prefix
        await expectCode(store.put(long + 'y'.repeat(20), streamOf('x')), 'invalid_path')
        await put(store, long, 'fits')
        for (const hidden of ['a/.uploads/x', '.uploads', 'f.versions/x']) {
          await expectCode(store.put(hidden, streamOf('x')), 'invalid_path')
          await expectCode(store.createUpload(hidden), 'invalid_path')
        }
        await put(store, 'file.versions', 'a file of that name is listed')
        await expectCode(store.move('file.versions', 'g.versions/inside'), 'invalid_path')
        await put(store, 'dir/a', 'a')
        await expectCode(store.move('dir', 'moved.versions'), 'invalid_path')
        expect((await store.list('')).entries.map((e) => e.name)).toEqual(['dir', 'x'.repeat(200), 'file.versions'])
      })
    })

    it('lists the root recursively past its bookkeeping, names beside `.filestorage` included', async () => {
      const store = open()
      for (const name of ['.filestorage.txt', '.filestorage0', '-a', 'z/z']) await put(store, name, name)
      for (let i = 0; i < 5; i++) {
        await outside.send(new PutObjectCommand({ Bucket, Key: `${store.driver.keys.prefix}.filestorage/junk/${i}`, Body: 'x' }))
      }
      const all = ['-a', '.filestorage.txt', '.filestorage0', 'z/z']
      expect((await store.list('', { recursive: true })).entries.map((e) => e.path)).toEqual(all)
      const seen: string[] = []
      let cursor: string | undefined
      for (let i = 0; i < 10; i++) {
        const page = await store.list('', { recursive: true, limit: 1, ...(cursor ? { cursor } : {}) })
        seen.push(...page.entries.map((e) => e.path))
        if (!page.nextCursor) break
        cursor = page.nextCursor
      }
      expect(seen).toEqual(all)
      expect((await store.list('')).entries.map((e) => e.name)).toEqual(['z', '-a', '.filestorage.txt', '.filestorage0'])
    })

    describe('objects other tools wrote', () => {
      it('describes them from their bytes (hashed once, recorded), S3\'s own SHA-256, or a folder marker; leaves out keys it cannot name', async () => {
        const store = open()
        const p = store.driver.keys.prefix
        const plain = randomBytes(300_000)
        await outside.send(new PutObjectCommand({ Bucket, Key: `${p}foreign/plain.bin`, Body: plain, ContentType: 'binary/octet-stream' }))
        const checked = Buffer.from('checked by S3')
        await outside.send(
          new PutObjectCommand({ Bucket, Key: `${p}foreign/checked.txt`, Body: checked, ChecksumSHA256: createHash('sha256').update(checked).digest('base64'), Metadata: { tool: 'rclone' } }),
        )
        await outside.send(new PutObjectCommand({ Bucket, Key: `${p}foreign/marker/`, Body: Buffer.alloc(0) }))
        await outside.send(new PutObjectCommand({ Bucket, Key: `${p}foreign/control\u0001name`, Body: 'x' }))
        const head = await outside.send(new HeadObjectCommand({ Bucket, Key: `${p}foreign/plain.bin` }))

        const file = await store.stat('foreign/plain.bin')
        expect(file).toMatchObject({ size: plain.length, sha256: sha256(plain), contentType: 'application/octet-stream', metadata: {} })
        expect([file.created, file.modified]).toEqual([head.LastModified!.toISOString(), head.LastModified!.toISOString()])
        expect((await store.stat('foreign/checked.txt')).sha256).toBe(sha256(checked))
        expect(await store.lookup('foreign/marker')).toEqual({ type: 'directory', path: 'foreign/marker', name: 'marker' })
        expect((await store.list('foreign')).entries.map((e) => `${e.type[0]}:${e.name}`)).toEqual(['d:marker', 'f:checked.txt', 'f:plain.bin'])
        expect((await store.list('foreign/marker')).entries).toEqual([])
        expect((await store.list('foreign', { recursive: true })).entries.map((e) => e.path)).toEqual(['foreign/checked.txt', 'foreign/plain.bin'])

        // Moved, it keeps the other tool's metadata.
        expect(await store.move('foreign/checked.txt', 'foreign/moved.txt')).toMatchObject({ sha256: sha256(checked) })
        expect((await headOf(store, 'foreign/moved.txt')).Metadata).toEqual({ tool: 'rclone' })
        await store.move('foreign/moved.txt', 'foreign/checked.txt')
        // Recorded in the background: another instance finds it without hashing again.
        await expect.poll(async () => (await keysUnder(`${p}.filestorage/hashes/`)).length, { timeout: 5_000 }).toBe(1)
        const again = open({ prefix: p })
        expect(await again.stat('foreign/plain.bin')).toEqual(file)
        // Replaced by the other tool: described afresh, never from the record of the old bytes.
        const replaced = randomBytes(1000)
        await outside.send(new PutObjectCommand({ Bucket, Key: `${p}foreign/plain.bin`, Body: replaced }))
        expect((await again.read('foreign/plain.bin')).file.sha256).toBe(sha256(replaced))
        expect(sha256(await readAll((await again.read('foreign/plain.bin')).body))).toBe(sha256(replaced))
      })
    })

    describe('versions written in parts', () => {
      it('keeps the sha256 of a file sent in parts in the digest of its revision, written before the file is visible', async () => {
        const store = open(SMALL_PARTS)
        const g = generated(12 * MiB + 3, 5)
        const { file } = await store.put('big/parts.bin', g.stream)
        const digested = g.digest()
        expect(file.sha256).toBe(digested)
        const head = await headOf(store, 'big/parts.bin')
        expect(head.ETag).toMatch(/-3"$/)
        expect(head.Metadata!['fs-sha256']).toBeUndefined()
        const revision = head.Metadata!['fs-rev']!
        const digest = await outside.send(new GetObjectCommand({ Bucket, Key: `${store.driver.keys.prefix}.filestorage/digests/${revision}` }))
        expect(JSON.parse(await digest.Body!.transformToString())).toMatchObject({ revision, sha256: digested, size: 12 * MiB + 3, paths: ['big/parts.bin'] })
        expect(await open({ prefix: store.driver.keys.prefix }).stat('big/parts.bin')).toEqual(file)
      })

      it('never pairs a reader\'s bytes with another version\'s sha256 while a writer replaces the file in parts', async () => {
        const store = open(SMALL_PARTS)
        const size = 5 * MiB + 1000
        await store.put('race.bin', generated(size, 100).stream)
        let writing = true
        let reads = 0
        const mismatches: string[] = []
        const writer = (async () => {
          try {
            for (let i = 1; i <= 6; i++) await store.put('race.bin', generated(size, 100 + i).stream)
          } finally {
            writing = false
          }
        })()
        const reader = async () => {
          while (writing) {
            const { file, body } = await store.read('race.bin')
            const got = sha256(await readAll(body))
            const described = await store.stat('race.bin').catch(() => null)
            if (got !== file.sha256) mismatches.push(`read: ${file.sha256} described bytes ${got}`)
            if (described && described.etag !== `"${described.sha256}"`) mismatches.push('stat')
            reads++
          }
        }
        await Promise.all([writer, reader(), reader()])
        expect(mismatches).toEqual([])
        expect(reads).toBeGreaterThan(2)
      })

      it('of racing creators in parts exactly one wins, and none leaves a multipart upload open', async () => {
        const store = open(SMALL_PARTS)
        const results = await Promise.allSettled(
          Array.from({ length: 3 }, (_, i) => store.put('one-winner.bin', generated(6 * MiB, 200 + i).stream, { mustNotExist: true })),
        )
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'precondition_failed' })
        expect(await openMultipartUploads(outside, Bucket!, store.driver.keys.prefix)).toEqual([])
      })
    })

    describe('leftovers and the sweep', () => {
      it('a cut upload leaves no object and no multipart upload; one a dead process left open is aborted by the sweep', async () => {
        const store = open(SMALL_PARTS)
        await expect(store.put('cut.bin', failingAfter(12 * MiB))).rejects.toThrow()
        expect(await store.lookup('cut.bin')).toBeNull()
        expect(await openMultipartUploads(outside, Bucket!, store.driver.keys.prefix)).toEqual([])
        // A process killed mid-upload leaves its multipart upload open; another tool has one open under the same prefix.
        const prefix = store.driver.keys.prefix
        const { exit } = await runStoreChild(
          { s3: { ...s3Where(prefix), partSize: 5 * MiB }, op: 'put', path: 'killed.bin', size: 12 * MiB, fill: 7, dieAfterBytes: 11 * MiB },
        )
        expect(exit.signal).toBe('SIGKILL')
        const Key = `${prefix}foreign.bin`
        const { UploadId } = await outside.send(new CreateMultipartUploadCommand({ Bucket, Key }))
        try {
          await outside.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: randomBytes(1000) }))
          await store.sweep(new Date())
          expect((await openMultipartUploads(outside, Bucket!, prefix)).sort()).toEqual([`${prefix}foreign.bin`, `${prefix}killed.bin`])
          await store.sweep(new Date(Date.now() + CONTRACT_POLICY.ttlMs + HOUR))
          // Ours is aborted, the other tool's stays; so does no claim.
          expect(await openMultipartUploads(outside, Bucket!, prefix)).toEqual([`${prefix}foreign.bin`])
          expect(await keysUnder(`${prefix}.filestorage/multipart/`)).toEqual([])
          expect(await fileKeys(store)).toEqual([])
        } finally {
          await outside.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }))
        }
      })

      it('aborts an upload of its own whose process died before it could write the upload id into its claim, and leaves another tool\'s', async () => {
        const store = open(SMALL_PARTS)
        const prefix = store.driver.keys.prefix
        const Key = `${prefix}half-claimed.bin`
        // As the store claims an upload: its key first, then the upload (a kill between them leaves no upload id).
        await outside.send(new PutObjectCommand({ Bucket, Key: `${prefix}.filestorage/multipart/cut`, Body: JSON.stringify({ key: Key }) }))
        const ours = await outside.send(new CreateMultipartUploadCommand({ Bucket, Key }))
        const foreign = await outside.send(new CreateMultipartUploadCommand({ Bucket, Key: `${prefix}other.bin` }))
        try {
          await store.sweep(new Date(Date.now() + CONTRACT_POLICY.ttlMs + HOUR))
          expect(await openMultipartUploads(outside, Bucket!, prefix)).toEqual([`${prefix}other.bin`])
          expect(await keysUnder(`${prefix}.filestorage/multipart/`)).toEqual([])
        } finally {
          await outside.send(new AbortMultipartUploadCommand({ Bucket, Key: `${prefix}other.bin`, UploadId: foreign.UploadId })).catch(() => {})
          await outside.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: ours.UploadId })).catch(() => {})
        }
      })

      it('removes digests of versions gone from every path they were at, and keeps those still there', async () => {
        const store = open(SMALL_PARTS)
        await store.put('kept.bin', generated(6 * MiB, 1).stream)
        await store.put('replaced.bin', generated(6 * MiB, 2).stream)
        await store.put('replaced.bin', streamOf('small now'))
        await store.put('moved.bin', generated(6 * MiB, 3).stream)
        await store.move('moved.bin', 'elsewhere/moved.bin')
        const digests = () => keysUnder(`${store.driver.keys.prefix}.filestorage/digests/`)
        expect(await digests()).toHaveLength(3)
        await store.sweep(new Date())
        expect(await digests()).toHaveLength(3) // too young to be touched
        await store.sweep(new Date(Date.now() + 2 * HOUR))
        expect(await digests()).toHaveLength(2)
        const fresh = open({ prefix: store.driver.keys.prefix })
        expect((await fresh.stat('elsewhere/moved.bin')).sha256).toBe(await generatedSha256(6 * MiB, 3))
        expect((await fresh.stat('kept.bin')).sha256).toBe(await generatedSha256(6 * MiB, 1))
      })
    })

    describe('a server without conditional writes', () => {
      it('finds out by itself that a server refuses conditional writes (501), and answers such requests not_supported', async () => {
        // SeaweedFS behind a proxy that answers a conditional PUT as a server without them does.
        const proxy = createHttpServer((req, res) => {
          if (req.method === 'PUT' && (req.headers['if-none-match'] !== undefined || req.headers['if-match'] !== undefined)) {
            req.resume()
            res.writeHead(501, { 'content-type': 'application/xml' }).end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>')
            return
          }
          const upstream = new URL(target!.endpoint)
          const forwarded = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(res)
          })
          req.pipe(forwarded)
        })
        await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
        try {
          const store = open({ endpoint: `http://127.0.0.1:${(proxy.address() as { port: number }).port}` })
          expect(await store.driver.capabilities.conditionalWrites()).toBe(false)
          await expectCode(store.put('b.txt', streamOf('x'), { mustNotExist: true }), 'not_supported')
          await expectCode(store.createUpload('parts.bin'), 'not_supported')
          expect((await store.put('a.txt', streamOf('plain'))).created).toBe(true)
          expect((await store.put('a.txt', streamOf('again'))).created).toBe(false)
        } finally {
          proxy.closeAllConnections()
          await new Promise((resolve) => proxy.close(resolve))
        }
      })

      it('refuses conditional writes, deletes and uploads in parts with not_supported, and does the rest', async () => {
        const store = open({ conditionalWrites: false })
        const file = await put(store, 'a.txt', 'one')
        await expectCode(store.put('b.txt', streamOf('x'), { mustNotExist: true }), 'not_supported')
        await expectCode(store.put('a.txt', streamOf('x'), { ifMatch: [file.etag] }), 'not_supported')
        await expectCode(store.delete('a.txt', { ifMatch: [file.etag] }), 'not_supported')
        await expectCode(store.createUpload('parts.bin'), 'not_supported')
        expect((await store.put('a.txt', streamOf('two'))).created).toBe(false)
        await store.move('a.txt', 'c.txt')
        await store.delete('c.txt')
        expect(await fileKeys(store)).toEqual([])
      })
    })

    describe('moves', () => {
      it('moves by copy and delete where RenameObject is not used, keeping every attribute, and adds the sha256 to a copy of a version written in parts', async () => {
        const store = open({ ...SMALL_PARTS, rename: false })
        const small = await put(store, 'm/small.txt', 'small', { metadata: { k: 1 }, contentType: 'text/x-custom' })
        const { file: large } = await store.put('m/large.bin', generated(6 * MiB, 9).stream)
        const moved = (await store.move('m/small.txt', 'n/small.txt')) as StoredFile
        expect(moved).toEqual({ ...small, path: 'n/small.txt' })
        expect(await store.stat('n/small.txt')).toEqual(moved)
        await store.move('m', 'o')
        expect(await fileKeys(store)).toEqual(['n/small.txt', 'o/large.bin'])
        expect((await headOf(store, 'o/large.bin')).Metadata!['fs-sha256']).toBe(large.sha256)
        expect(await store.stat('o/large.bin')).toEqual({ ...large, path: 'o/large.bin' })
        expect(await keysUnder(`${store.driver.keys.prefix}.filestorage/moves/`)).toEqual([])
      })

      it('renames atomically with RenameObject where SeaweedFS has it, telling the digest of a version written in parts its new path', async () => {
        const store = open(SMALL_PARTS)
        expect(await store.driver.capabilities.rename()).toBe(true)
        const { file } = await store.put('r/large.bin', generated(6 * MiB, 11).stream)
        await store.move('r', 's')
        const head = await headOf(store, 's/large.bin')
        expect(head.Metadata!['fs-sha256']).toBeUndefined()
        const digest = await outside.send(new GetObjectCommand({ Bucket, Key: `${store.driver.keys.prefix}.filestorage/digests/${head.Metadata!['fs-rev']}` }))
        expect(JSON.parse(await digest.Body!.transformToString()).paths).toEqual(['r/large.bin', 's/large.bin'])
        await store.sweep(new Date(Date.now() + 2 * HOUR))
        expect(await open({ prefix: store.driver.keys.prefix }).stat('s/large.bin')).toEqual({ ...file, path: 's/large.bin' })
      })

      it('copies a file over the single-copy limit in ranges', async () => {
        const store = open({ ...SMALL_PARTS, rename: false, singleCopyMax: 1 * MiB })
        const file = await put(store, 'huge.bin', randomBytes(2 * MiB))
        await store.move('huge.bin', 'moved/huge.bin')
        expect(await store.stat('moved/huge.bin')).toEqual({ ...file, path: 'moved/huge.bin' })
        expect((await headOf(store, 'moved/huge.bin')).ETag).toMatch(/-1"$/)
      })

      it('finishes, in the sweep, a file move and a folder move whose process stopped after copying', async () => {
        const store = open({ rename: false })
        const p = store.driver.keys.prefix
        for (const name of ['1', '2', '3', '4']) await put(store, `from/${name}`, name)
        const one = await put(store, 'single.txt', 'single')
        // The copies a process made before it died, and its journals.
        for (const name of ['1', '2']) await outside.send(new CopyObjectCommand({ Bucket, Key: `${p}to/${name}`, CopySource: `${Bucket}/${p}from/${name}` }))
        await outside.send(new CopyObjectCommand({ Bucket, Key: `${p}moved.txt`, CopySource: `${Bucket}/${p}single.txt` }))
        const { ETag } = await headOf(store, 'single.txt')
        const journal = (id: string, body: object) => outside.send(new PutObjectCommand({ Bucket, Key: `${p}.filestorage/moves/${id}`, Body: JSON.stringify(body) }))
        await journal('folder', { kind: 'folder', from: `${p}from/`, to: `${p}to/` })
        await journal('file', { kind: 'file', from: `${p}single.txt`, to: `${p}moved.txt`, fromEtag: ETag, revision: (await headOf(store, 'single.txt')).Metadata!['fs-rev'] })
        await store.sweep(new Date())
        expect(await fileKeys(store)).toHaveLength(8) // a journal of a move that may still be running is left alone
        await store.sweep(new Date(Date.now() + 10 * 60 * 1000))
        expect(await fileKeys(store)).toEqual(['moved.txt', 'to/1', 'to/2', 'to/3', 'to/4'])
        expect(await store.stat('moved.txt')).toEqual({ ...one, path: 'moved.txt', name: 'moved.txt' })
        expect(await keysUnder(`${p}.filestorage/moves/`)).toEqual([])
      })
    })

    describe('uploads composed from staged parts', () => {
      it('copies pieces of 5 MiB or more server-side and merges smaller ones, whatever the parts\' sizes', async () => {
        const store = open({ ...SMALL_PARTS, uploads: { ...CONTRACT_POLICY, partSizeLimit: 16 * MiB } })
        const sizes = [1 * MiB, 6 * MiB + 1, 2 * MiB, 100, 7 * MiB, 3]
        const { uploadId } = await store.createUpload('composed.bin', { metadata: { composed: true } })
        const bodies = sizes.map((size) => randomBytes(size))
        await Promise.all(bodies.map((b, i) => store.putPart(uploadId, i + 1, streamOf(b))))
        const whole = Buffer.concat(bodies)
        const { file } = await store.completeUpload(uploadId, { expectedSha256: sha256(whole) })
        expect(file).toMatchObject({ size: whole.length, sha256: sha256(whole), metadata: { composed: true } })
        expect((await outsideBytes(store, 'composed.bin')).equals(whole)).toBe(true)
        expect((await headOf(store, 'composed.bin')).ETag).toMatch(/-\d+"$/)
        expect(await store.stat('composed.bin')).toEqual(file)
        expect(await keysUnder(`${store.driver.keys.prefix}.filestorage/uploads/${uploadId}/`)).toEqual(['record.json'])
      })

      it('keeps every small append as a part of its own, and copies a single part onto the file with its sha256', async () => {
        const store = open(SMALL_PARTS)
        const { uploadId } = await store.createUpload('appended.bin')
        const chunks = Array.from({ length: 30 }, (_, i) => randomBytes(200_000 + i))
        let offset = 0
        for (const chunk of chunks) offset = (await store.appendPart(uploadId, streamOf(chunk), { offset })).offset
        expect((await store.uploadStatus(uploadId)).parts).toHaveLength(30)
        const { file } = await store.completeUpload(uploadId)
        expect(file.sha256).toBe(sha256(Buffer.concat(chunks)))

        const single = await store.createUpload('single.bin')
        const body = randomBytes(6 * MiB)
        await store.appendPart(single.uploadId, streamOf(body), { offset: 0 })
        expect((await store.completeUpload(single.uploadId)).file.sha256).toBe(sha256(body))
        expect((await headOf(store, 'single.bin')).Metadata!['fs-sha256']).toBe(sha256(body))
      })

      it('plans at most 10,000 S3 parts, each but the last of 5 MiB or more, from any parts', () => {
        const check = (sizes: number[]) => {
          const pieces = planPieces(sizes.map((size, i) => ({ key: String(i), size })))
          const lengths = pieces.map((p) => (p.kind === 'copy' ? p.segment.end - p.segment.start : p.size))
          expect(lengths.reduce((a, b) => a + b, 0)).toBe(sizes.reduce((a, b) => a + b, 0))
          expect(pieces.length).toBeLessThanOrEqual(10_000)
          expect(lengths.slice(0, -1).every((l) => l >= 5 * MiB)).toBe(true)
          return pieces
        }
        check(Array.from({ length: 20_000 }, () => 6 * MiB)) // appends past 10,000 parts
        check(Array.from({ length: 10_000 }, () => 1))
        check([5 * MiB - 1, 5 * MiB + 1, 1, 12 * 1024 ** 3, 3])
        expect(check([3 * MiB, 20 * MiB]).map((p) => p.kind)).toEqual(['stream', 'copy'])
      })
    })

    describe('an S3 that does not answer', () => {
      let silent: Server
      const held: Socket[] = []
      let port = 0
      beforeAll(async () => {
        silent = createServer((socket) => held.push(socket)) // accepts, never answers
        await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
        port = (silent.address() as { port: number }).port
      })
      afterAll(async () => {
        for (const s of held) s.destroy()
        await new Promise((resolve) => silent.close(resolve))
      })

      it('answers store_unavailable within its timeout, and reports itself down', async () => {
        const store = S3Driver.open({ bucket: 'anything', endpoint: `http://127.0.0.1:${port}`, credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, timeoutMs: 500 })
        try {
          const started = Date.now()
          await expectCode(store.stat('a.txt'), 'store_unavailable')
          await expectCode(store.put('a.txt', streamOf('x')), 'store_unavailable')
          expect(Date.now() - started).toBeLessThan(10_000)
          expect(await store.health()).toMatchObject({ ok: false })
        } finally {
          await store.close()
        }
        const refused = S3Driver.open({ bucket: 'anything', endpoint: 'http://127.0.0.1:1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, timeoutMs: 500 })
        await expectCode(refused.read('a.txt'), 'store_unavailable')
        await refused.close()
      })
    })
  })
})
