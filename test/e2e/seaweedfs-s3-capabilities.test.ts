/**
 * What SeaweedFS's S3 gateway (the run's `weed server -s3`, S3_ENDPOINT) actually does, pinned with
 * the AWS SDK in path style, as the s3 store will call it. Each test asserts the behaviour observed
 * and says what the store must do about it; a SeaweedFS upgrade that changes one fails here first.
 *
 * | Feature | SeaweedFS | Consequence for the s3 store |
 * |---|---|---|
 * | Signatures | SigV4 checked against the identity file (wrong secret: 403); any region signs | credentials from the SDK chain; `S3_REGION` only has to be consistent |
 * | `If-None-Match: *`, `If-Match` on PutObject | honoured: 412; `If-Match` on an absent key 404 | create-if-absent and replace-if-unchanged in one request |
 * | Same on CompleteMultipartUpload | honoured (412 / 404); a refused upload stays open | conditions on completion; abort after a 412 |
 * | Two to four racers creating one key | exactly one winner (PutObject and CompleteMultipartUpload), the rest 412 | `If-None-Match: *` has one winner without a lock of ours |
 * | CopyObject `x-amz-copy-source-if-*`, destination `If-None-Match`/`If-Match` | all honoured (412) | a move is copy-if-unchanged + destination-if-absent |
 * | DeleteObject `If-Match` | honoured: 412 when changed, and 412 (not 404) when absent; DeleteObjects per-object ETag too | conditional delete; a 412 may mean "gone already" |
 * | ETag | single PUT: MD5 hex; multipart: MD5 of the parts' binary MD5s + `-N`, computable before completion; kept by CopyObject, REPLACE and RenameObject | the ETag is known before the object is visible; a move keeps it |
 * | SHA-256 checksum | verified on PutObject (400 BadDigest) and returned by HEAD/GET with `ChecksumMode`; multipart: composite (`...-N`) | single PUT: the object's own SHA-256 is readable by any tool; multipart: keep the whole-file sha256 in metadata |
 * | User metadata | no 2 KB limit (64 KiB accepted); names lower-cased; non-ASCII values do not round-trip; surrounding blanks trimmed | enforce our own limit (2 KB, AWS's) and refuse beyond it; encode values (non-ASCII, blanks) ourselves |
 * | MetadataDirective | COPY keeps type and metadata; REPLACE replaces both, also onto itself; COPY onto itself 400 | attribute changes are a REPLACE copy onto itself |
 * | Multipart part size | 5 MiB minimum except the last, enforced at completion (400 EntityTooSmall); part 10001: 400 | small parts/tus appends must be merged before they become S3 parts |
 * | A part uploaded twice | ListParts lists both; completion takes the ETag given | never trust ListParts to be unique: keep our own part ETags |
 * | UploadPartCopy with a range | works; its ETag is the MD5 of the range; the 5 MiB rule holds for copied parts too | server-side compose of staged objects of 5 MiB or more, and copies over 5 GiB; smaller pieces are merged by reading them |
 * | CopyObject speed | copies the bytes (the volume grows by the size; 256 MiB in about 0.6 s, upload 2.2 s) | a folder move copies data; RenameObject (below) does not |
 * | RenameObject (SeaweedFS extension, AWS directory buckets) | atomic, keeps ETag and metadata, `DestinationIfNoneMatch` honoured | a cheap move on SeaweedFS, if the store probes for it |
 * | ListObjectsV2 | UTF-8 byte order; delimiter + prefix right; tokens page without gaps; MaxKeys capped at 1000; no metadata | pages map onto SPEC's cursors; FileInfo in a listing needs a HEAD per file (or none) |
 * | StartAfter inside a delimiter listing | a StartAfter at or inside a common prefix skips that prefix (AWS lists it again) | page with ContinuationToken, not StartAfter |
 * | Keys | 1024 bytes total and 255 per segment (KeyTooLongError beyond); `.`/`..` segments 400; `//`, a leading `/` and `\` are rewritten (aliases) | SPEC's path rules already refuse all of these; S3_PREFIX counts in the 1024 |
 * | Reserved names | a `.uploads` segment, or a folder ending `.versions`, hides the objects under it from listings | refuse (or escape) such paths on SeaweedFS |
 * | Folders | a folder and a file of one name coexist; HEAD `folder/` answers 200 `application/x-directory` for any implied folder; empty folders vanish | never HEAD a key with a trailing slash to test existence; list instead |
 * | Open multipart uploads | invisible to HEAD and listings, listed by ListMultipartUploads (prefix, paging), kept until aborted (no expiry by default); abort 204, then 404 | the sweep aborts orphans by listing them |
 * | Range, If-None-Match, If-Match on GET/HEAD | 206/416; 304/412; several ranges ignored (200, whole) | conditional GETs can go straight to S3 |
 * | Presigned GET | response-content-type/-disposition/-cache-control honoured; an unsigned override, a tampered or expired URL: 403 | S3_REDIRECT_DOWNLOADS can force attachment safely |
 * | DeleteObjects | batch of up to 1000 (more: 400 MalformedXML); absent keys reported deleted | folder delete in batches of 1000 |
 */
import { createHash, randomBytes } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  type CompleteMultipartUploadCommandInput,
  CopyObjectCommand,
  type CopyObjectCommandInput,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  type GetObjectCommandInput,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  type PutObjectCommandInput,
  RenameObjectCommand,
  type S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { s3Client, s3Target, uniqueBucket } from '../helpers/seaweedfs.js'

const target = s3Target()
const MiB = 1024 * 1024
const NO_SUCH_ETAG = '"00000000000000000000000000000000"'
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex')
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('base64')

/** How an S3 call failed: the SDK's error name (the S3 error code where the body has one) and the HTTP status. */
async function failure(call: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await call
  } catch (e) {
    const err = e as { name: string; $metadata?: { httpStatusCode?: number } }
    return { code: err.name, status: err.$metadata?.httpStatusCode }
  }
  throw new Error('the call succeeded')
}
const status = async (call: Promise<unknown>) => (await failure(call)).status

describe.runIf(target)('SeaweedFS S3 gateway: what the s3 store can rely on', () => {
  const Bucket = uniqueBucket('capabilities')
  let client: S3Client

  const put = (Key: string, Body: string | Uint8Array = 'x', extra: Partial<PutObjectCommandInput> = {}) =>
    client.send(new PutObjectCommand({ Bucket, Key, Body, ...extra }))
  const head = (Key: string) => client.send(new HeadObjectCommand({ Bucket, Key }))
  const read = async (Key: string) => Buffer.from(await (await client.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToByteArray())
  const keys = async (Prefix: string, Delimiter?: string) => {
    const r = await client.send(new ListObjectsV2Command({ Bucket, Prefix, Delimiter }))
    return { keys: (r.Contents ?? []).map((o) => o.Key!), prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix!) }
  }
  const openUploads = async (Prefix: string) =>
    ((await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix }))).Uploads ?? []).map((u) => ({ key: u.Key!, id: u.UploadId! }))

  /** Starts a multipart upload of `parts`; `complete` finishes it with `extra` (conditions). */
  async function multipart(Key: string, parts: Uint8Array[], extra: Partial<CompleteMultipartUploadCommandInput> = {}) {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }))
    const done: { PartNumber: number; ETag: string }[] = []
    for (const [i, Body] of parts.entries()) {
      const { ETag } = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: i + 1, Body }))
      done.push({ PartNumber: i + 1, ETag: ETag! })
    }
    return {
      UploadId: UploadId!,
      parts: done,
      complete: () => client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: done }, ...extra })),
      abort: () => client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })),
    }
  }

  beforeAll(async () => {
    // One attempt per call (what the gateway answers, not the SDK's retries); large bodies are small here.
    client = s3Client(target!, { maxAttempts: 1, requestTimeoutMs: 60_000 })
    await client.send(new CreateBucketCommand({ Bucket }))
  })
  afterAll(async () => {
    // The gateway deletes a bucket with its objects (-s3.allowDeleteBucketNotEmpty, on by default).
    await client?.send(new DeleteBucketCommand({ Bucket })).catch(() => {})
    client?.destroy()
  })

  describe('signatures', () => {
    it('refuses a request signed with the wrong secret, and takes any region in the signature', async () => {
      const forger = s3Client({ ...target!, secretAccessKey: 'wrong' }, { maxAttempts: 1 })
      const elsewhere = s3Client({ ...target!, region: 'eu-west-3' }, { maxAttempts: 1 })
      try {
        expect(await failure(forger.send(new PutObjectCommand({ Bucket, Key: 'sig', Body: 'x' })))).toEqual({ code: 'SignatureDoesNotMatch', status: 403 })
        await elsewhere.send(new PutObjectCommand({ Bucket, Key: 'sig', Body: 'x' }))
      } finally {
        forger.destroy()
        elsewhere.destroy()
      }
    })
  })

  describe('conditional writes', () => {
    it('PutObject: If-None-Match: * and If-Match answer 412; If-Match on an absent key 404', async () => {
      const { ETag } = await put('cond/put', 'one')
      expect(await failure(put('cond/put', 'two', { IfNoneMatch: '*' }))).toEqual({ code: 'PreconditionFailed', status: 412 })
      expect(await failure(put('cond/put', 'two', { IfMatch: NO_SUCH_ETAG }))).toEqual({ code: 'PreconditionFailed', status: 412 })
      expect(await failure(put('cond/absent', 'two', { IfMatch: ETag }))).toEqual({ code: 'NoSuchKey', status: 404 })
      await put('cond/put', 'three', { IfMatch: ETag })
      expect((await read('cond/put')).toString()).toBe('three')
    })

    it('CompleteMultipartUpload: If-None-Match: * and If-Match are honoured, and a refused upload stays open', async () => {
      await put('cond/mpu', 'existing')
      const refused = await multipart('cond/mpu', [Buffer.from('new')], { IfNoneMatch: '*' })
      expect(await failure(refused.complete())).toEqual({ code: 'PreconditionFailed', status: 412 })
      expect((await read('cond/mpu')).toString()).toBe('existing')
      // Nothing cleans it up: the store aborts after a refused completion.
      expect((await openUploads('cond/mpu')).map((u) => u.id)).toContain(refused.UploadId)
      await refused.abort()

      const created = await multipart('cond/mpu-new', [Buffer.from('new')], { IfNoneMatch: '*' })
      await created.complete()
      const { ETag } = await head('cond/mpu-new')

      const stale = await multipart('cond/mpu-new', [Buffer.from('newer')], { IfMatch: NO_SUCH_ETAG })
      expect(await failure(stale.complete())).toEqual({ code: 'PreconditionFailed', status: 412 })
      await stale.abort()
      const current = await multipart('cond/mpu-new', [Buffer.from('newer')], { IfMatch: ETag })
      await current.complete()
      expect((await read('cond/mpu-new')).toString()).toBe('newer')

      const absent = await multipart('cond/mpu-absent', [Buffer.from('x')], { IfMatch: ETag })
      expect(await failure(absent.complete())).toEqual({ code: 'NoSuchKey', status: 404 })
      await absent.abort()
    })

    it('CopyObject: the source conditions and the destination If-None-Match/If-Match are honoured', async () => {
      const { ETag: source } = await put('cond/src', 'source')
      const copy = (Key: string, extra: Partial<CopyObjectCommandInput> = {}) =>
        client.send(new CopyObjectCommand({ Bucket, Key, CopySource: `${Bucket}/cond/src`, ...extra }))
      expect(await status(copy('cond/dst', { CopySourceIfMatch: NO_SUCH_ETAG }))).toBe(412)
      expect(await status(copy('cond/dst', { CopySourceIfNoneMatch: source }))).toBe(412)
      await copy('cond/dst', { CopySourceIfMatch: source, IfNoneMatch: '*' })
      expect(await status(copy('cond/dst', { IfNoneMatch: '*' }))).toBe(412)
      expect(await status(copy('cond/dst', { IfMatch: NO_SUCH_ETAG }))).toBe(412)
      const { ETag: destination } = await head('cond/dst')
      await copy('cond/dst', { IfMatch: destination })
    })

    it.each(['PutObject', 'CompleteMultipartUpload'] as const)('%s with If-None-Match: * has exactly one winner among four racers', async (operation) => {
      const rounds = 12
      const outcomes: number[][] = []
      for (let round = 0; round < rounds; round++) {
        const Key = `race/${operation}/${round}`
        let attempts: (() => Promise<unknown>)[]
        if (operation === 'PutObject') {
          attempts = Array.from({ length: 4 }, (_, i) => () => put(Key, `racer ${i}`, { IfNoneMatch: '*' }))
        } else {
          const uploads = await Promise.all(Array.from({ length: 4 }, (_, i) => multipart(Key, [Buffer.from(`racer ${i}`)], { IfNoneMatch: '*' })))
          attempts = uploads.map((u) => u.complete)
        }
        const settled = await Promise.allSettled(attempts.map((attempt) => attempt()))
        outcomes.push(settled.map((s) => (s.status === 'fulfilled' ? 200 : (s.reason as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0)))
      }
      for (const round of outcomes) expect([...round].sort()).toEqual([200, 412, 412, 412])
      for (const upload of await openUploads(`race/${operation}/`)) {
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key: upload.key, UploadId: upload.id }))
      }
    })

    it('DeleteObject If-Match: 412 when the ETag differs (the object stays) and also when the object is absent', async () => {
      const { ETag } = await put('cond/delete', 'x')
      expect(await failure(client.send(new DeleteObjectCommand({ Bucket, Key: 'cond/delete', IfMatch: NO_SUCH_ETAG })))).toEqual({ code: 'PreconditionFailed', status: 412 })
      expect((await head('cond/delete')).ETag).toBe(ETag)
      await client.send(new DeleteObjectCommand({ Bucket, Key: 'cond/delete', IfMatch: ETag }))
      expect(await status(head('cond/delete'))).toBe(404)
      expect(await status(client.send(new DeleteObjectCommand({ Bucket, Key: 'cond/delete', IfMatch: ETag })))).toBe(412)

      await put('cond/batch', 'x')
      const batch = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'cond/batch', ETag: NO_SUCH_ETAG }] } }))
      expect(batch.Errors).toEqual([expect.objectContaining({ Key: 'cond/batch', Code: 'PreconditionFailed' })])
      expect(await head('cond/batch')).toBeDefined()
    })
  })

  describe('ETags and checksums', () => {
    it('a single PUT has the MD5 as ETag; a multipart object the MD5 of its parts\' MD5s and the part count, known before completion', async () => {
      const body = randomBytes(1000)
      expect((await put('etag/single', body)).ETag).toBe(`"${md5(body)}"`)

      const parts = [randomBytes(5 * MiB), randomBytes(1234)]
      const upload = await multipart('etag/multi', parts)
      expect(upload.parts.map((p) => p.ETag)).toEqual(parts.map((p) => `"${md5(p)}"`))
      const predicted = `"${md5(Buffer.concat(parts.map((p) => Buffer.from(md5(p), 'hex'))))}-2"`
      expect((await upload.complete()).ETag).toBe(predicted)
      expect((await head('etag/multi')).ETag).toBe(predicted)
    })

    it('CopyObject keeps the ETag of a single and of a multipart object, and so does a REPLACE of the attributes', async () => {
      const single = (await head('etag/single')).ETag
      const multi = (await head('etag/multi')).ETag
      await client.send(new CopyObjectCommand({ Bucket, Key: 'etag/single-copy', CopySource: `${Bucket}/etag/single` }))
      await client.send(new CopyObjectCommand({ Bucket, Key: 'etag/multi-copy', CopySource: `${Bucket}/etag/multi` }))
      await client.send(new CopyObjectCommand({ Bucket, Key: 'etag/single', CopySource: `${Bucket}/etag/single`, MetadataDirective: 'REPLACE', Metadata: { changed: 'yes' } }))
      expect((await head('etag/single-copy')).ETag).toBe(single)
      expect((await head('etag/multi-copy')).ETag).toBe(multi)
      expect((await head('etag/single')).ETag).toBe(single)
    })

    it('verifies a SHA-256 sent with PutObject and returns it with ChecksumMode; a multipart object has a composite one', async () => {
      const body = randomBytes(3000)
      await put('sum/single', body, { ChecksumSHA256: sha256(body) })
      const h = await client.send(new HeadObjectCommand({ Bucket, Key: 'sum/single', ChecksumMode: 'ENABLED' }))
      expect(h.ChecksumSHA256).toBe(sha256(body))
      expect(await failure(put('sum/wrong', body, { ChecksumSHA256: sha256(Buffer.from('other')) }))).toEqual({ code: 'BadDigest', status: 400 })
      expect(await status(head('sum/wrong'))).toBe(404)

      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'sum/multi', ChecksumAlgorithm: 'SHA256' }))
      const parts = [randomBytes(5 * MiB), randomBytes(100)]
      const done = []
      for (const [i, Body] of parts.entries()) {
        const r = await client.send(new UploadPartCommand({ Bucket, Key: 'sum/multi', UploadId, PartNumber: i + 1, Body, ChecksumAlgorithm: 'SHA256' }))
        done.push({ PartNumber: i + 1, ETag: r.ETag, ChecksumSHA256: r.ChecksumSHA256 })
      }
      await client.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'sum/multi', UploadId, MultipartUpload: { Parts: done } }))
      const m = await client.send(new HeadObjectCommand({ Bucket, Key: 'sum/multi', ChecksumMode: 'ENABLED' }))
      expect(m.ChecksumType).toBe('COMPOSITE')
      expect(m.ChecksumSHA256).toMatch(/-2$/)
      expect(m.ChecksumSHA256).not.toBe(sha256(Buffer.concat(parts)))
    })
  })

  describe('user metadata and attributes', () => {
    it('enforces no 2 KB limit: 8 KiB round-trips and 64 KiB is accepted', async () => {
      await put('meta/8k', 'x', { Metadata: { big: 'v'.repeat(8 * 1024) } })
      expect((await head('meta/8k')).Metadata?.big).toHaveLength(8 * 1024)
      // (Reading 64 KiB of headers back would overflow Node's 16 KiB response-header limit.)
      await put('meta/64k', 'x', { Metadata: { big: 'v'.repeat(64 * 1024) } })
    })

    it('lower-cases names, keeps JSON values, trims surrounding blanks and does not round-trip non-ASCII', async () => {
      await put('meta/chars', 'x', {
        Metadata: { 'Mixed-Case': 'A', under_score: 'b', json: '{"a":[1,"b"],"c":null}', padded: '  inner  blanks  ', latin1: 'caf\u00e9' },
      })
      expect((await head('meta/chars')).Metadata).toEqual({
        'mixed-case': 'A',
        under_score: 'b',
        json: '{"a":[1,"b"],"c":null}',
        padded: 'inner  blanks',
        // The é went out as the byte E9 and comes back as C3 A9 (its UTF-8), read as latin1.
        latin1: 'caf\u00c3\u00a9',
      })
      // A character above U+00FF cannot be a header at all: the client refuses to send it.
      await expect(put('meta/utf8', 'x', { Metadata: { v: '\u65e5\u672c' } })).rejects.toThrow(/Invalid character in header/)
    })

    it('CopyObject keeps type and metadata (COPY), replaces both (REPLACE, also onto itself), and refuses COPY onto itself', async () => {
      await put('attr/src', 'x', { ContentType: 'text/a', ContentDisposition: 'attachment', Metadata: { a: '1', b: '2' } })
      await client.send(new CopyObjectCommand({ Bucket, Key: 'attr/copy', CopySource: `${Bucket}/attr/src` }))
      const copied = await head('attr/copy')
      expect([copied.ContentType, copied.ContentDisposition, copied.Metadata]).toEqual(['text/a', 'attachment', { a: '1', b: '2' }])

      await client.send(new CopyObjectCommand({ Bucket, Key: 'attr/src', CopySource: `${Bucket}/attr/src`, MetadataDirective: 'REPLACE', ContentType: 'text/b', Metadata: { c: '3' } }))
      const replaced = await head('attr/src')
      expect([replaced.ContentType, replaced.ContentDisposition, replaced.Metadata]).toEqual(['text/b', undefined, { c: '3' }])
      expect(await failure(client.send(new CopyObjectCommand({ Bucket, Key: 'attr/src', CopySource: `${Bucket}/attr/src` })))).toEqual({ code: 'InvalidRequest', status: 400 })
    })

    it('defaults the content type to application/octet-stream and keeps the standard headers', async () => {
      await put('attr/plain', Buffer.alloc(0))
      expect((await head('attr/plain')).ContentType).toBe('application/octet-stream')
      await put('attr/headers', 'x', { ContentType: 'text/plain; charset=utf-8', ContentDisposition: 'attachment; filename="a.txt"', CacheControl: 'no-cache', ContentLanguage: 'fr' })
      const h = await head('attr/headers')
      expect([h.ContentType, h.ContentDisposition, h.CacheControl, h.ContentLanguage]).toEqual(['text/plain; charset=utf-8', 'attachment; filename="a.txt"', 'no-cache', 'fr'])
      expect(h.LastModified!.getMilliseconds()).toBe(0) // second precision
    })
  })

  describe('multipart uploads', () => {
    it('enforces the 5 MiB minimum of every part but the last at completion, and part numbers up to 10,000', async () => {
      const small = await multipart('mpu/small', [Buffer.from('aaa'), Buffer.from('bbb')])
      expect(await failure(small.complete())).toEqual({ code: 'EntityTooSmall', status: 400 })
      await small.abort()
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'mpu/numbers' }))
      await client.send(new UploadPartCommand({ Bucket, Key: 'mpu/numbers', UploadId, PartNumber: 10_000, Body: 'x' }))
      expect(await failure(client.send(new UploadPartCommand({ Bucket, Key: 'mpu/numbers', UploadId, PartNumber: 10_001, Body: 'x' })))).toEqual({ code: 'InvalidArgument', status: 400 })
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key: 'mpu/numbers', UploadId }))
    })

    it('lists a part uploaded twice twice; the completion takes the ETag it is given; a wrong ETag is InvalidPart', async () => {
      const Key = 'mpu/again'
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }))
      const first = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: 'first' }))
      const second = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: 'second' }))
      const listed = (await client.send(new ListPartsCommand({ Bucket, Key, UploadId }))).Parts ?? []
      const entries = listed.map((p) => [p.PartNumber, p.Size, p.ETag] as const).sort((x, y) => x[1]! - y[1]!)
      expect(entries).toEqual([[1, 5, first.ETag], [1, 6, second.ETag]])
      const complete = (ETag: string) => client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag }] } }))
      expect(await failure(complete(NO_SUCH_ETAG))).toEqual({ code: 'InvalidPart', status: 400 })
      await complete(second.ETag!)
      expect((await read(Key)).toString()).toBe('second')
    })

    it('UploadPartCopy copies a byte range of another object into a part, under the same 5 MiB rule', async () => {
      const source = randomBytes(6 * MiB)
      await put('mpu/source', source)
      const Key = 'mpu/composed'
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }))
      const ranges = [[100, 100 + 5 * MiB - 1], [6_000_000, 6_000_999]] as const
      const parts = []
      for (const [i, [from, to]] of ranges.entries()) {
        const r = await client.send(new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: i + 1, CopySource: `${Bucket}/mpu/source`, CopySourceRange: `bytes=${from}-${to}` }))
        expect(r.CopyPartResult?.ETag).toBe(`"${md5(source.subarray(from, to + 1))}"`)
        parts.push({ PartNumber: i + 1, ETag: r.CopyPartResult!.ETag })
      }
      await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }))
      expect((await read(Key)).equals(Buffer.concat(ranges.map(([from, to]) => source.subarray(from, to + 1))))).toBe(true)

      // Small staged objects cannot be composed server-side either.
      const small = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'mpu/small-copies' }))
      const copies = []
      for (const PartNumber of [1, 2]) {
        const r = await client.send(new UploadPartCopyCommand({ Bucket, Key: 'mpu/small-copies', UploadId: small.UploadId, PartNumber, CopySource: `${Bucket}/mpu/source`, CopySourceRange: 'bytes=0-999' }))
        copies.push({ PartNumber, ETag: r.CopyPartResult!.ETag })
      }
      const completion = client.send(new CompleteMultipartUploadCommand({ Bucket, Key: 'mpu/small-copies', UploadId: small.UploadId, MultipartUpload: { Parts: copies } }))
      expect(await failure(completion)).toEqual({ code: 'EntityTooSmall', status: 400 })
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key: 'mpu/small-copies', UploadId: small.UploadId }))
    })

    it('keeps an open upload out of HEAD and listings, lists it by prefix and in pages, and forgets it once aborted', async () => {
      const one = await multipart('open/one', [Buffer.from('part')])
      const two = await multipart('open/two', [])
      expect(await status(head('open/one'))).toBe(404)
      expect(await keys('open/')).toEqual({ keys: [], prefixes: [] })
      expect((await openUploads('open/')).map((u) => u.key)).toEqual(['open/one', 'open/two'])
      expect((await openUploads('open/t')).map((u) => u.key)).toEqual(['open/two'])
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: 'open/', MaxUploads: 1 }))
      expect([page.Uploads?.map((u) => u.Key), page.IsTruncated, page.NextKeyMarker]).toEqual([['open/one'], true, 'open/one'])
      // An upload id belongs to its key.
      expect(await status(client.send(new AbortMultipartUploadCommand({ Bucket, Key: 'open/other', UploadId: two.UploadId })))).toBe(404)
      expect((await one.abort()).$metadata.httpStatusCode).toBe(204)
      expect(await failure(one.abort())).toEqual({ code: 'NoSuchUpload', status: 404 })
      expect(await status(client.send(new UploadPartCommand({ Bucket, Key: 'open/one', UploadId: one.UploadId, PartNumber: 2, Body: 'x' })))).toBe(404)
      await two.abort()
      expect(await openUploads('open/')).toEqual([])
    })
  })

  describe('listings', () => {
    const names = ['B', 'Z', 'a', 'a b', 'a-b', 'a/b', 'a/b/c', 'a/c', 'dir/sub/z', 'dir/x', 'z', '~', '\u00e9', '\u65e5\u672c/\u8a9e', '\uff5e', '\u{1f600}']
    beforeAll(async () => {
      for (const name of names) await put(`list/${name}`, name, { Metadata: { m: 'v' } })
    })

    it('orders keys by their UTF-8 bytes (not by UTF-16 code units)', async () => {
      const all = (await keys('list/')).keys.map((k) => k.slice('list/'.length))
      expect(all).toEqual([...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))))
      expect(all.indexOf('\uff5e')).toBeLessThan(all.indexOf('\u{1f600}')) // U+FF5E < U+1F600 in UTF-8, not in UTF-16
    })

    it('groups by delimiter under a prefix, also for a prefix that ends mid-name', async () => {
      expect(await keys('list/', '/')).toEqual({
        keys: ['list/B', 'list/Z', 'list/a', 'list/a b', 'list/a-b', 'list/z', 'list/~', 'list/\u00e9', 'list/\uff5e', 'list/\u{1f600}'],
        prefixes: ['list/a/', 'list/dir/', 'list/\u65e5\u672c/'],
      })
      expect(await keys('list/a/', '/')).toEqual({ keys: ['list/a/b', 'list/a/c'], prefixes: ['list/a/b/'] })
      expect(await keys('list/di', '/')).toEqual({ keys: [], prefixes: ['list/dir/'] })
    })

    it('pages with continuation tokens, every entry once and in order, and caps MaxKeys at 1000', async () => {
      const seen: string[] = []
      let ContinuationToken: string | undefined
      for (let page = 0; page < 20; page++) {
        const r = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'list/', Delimiter: '/', MaxKeys: 2, ContinuationToken }))
        seen.push(...(r.Contents ?? []).map((o) => o.Key!), ...(r.CommonPrefixes ?? []).map((p) => p.Prefix!))
        ContinuationToken = r.NextContinuationToken
        if (!r.IsTruncated) break
      }
      const { keys: all, prefixes } = await keys('list/', '/')
      expect(seen.sort()).toEqual([...all, ...prefixes].sort())
      expect((await client.send(new ListObjectsV2Command({ Bucket, MaxKeys: 5000 }))).MaxKeys).toBe(1000)
    })

    it('skips a common prefix that StartAfter names or falls inside (AWS would list it again)', async () => {
      const after = async (StartAfter: string) => {
        const r = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'list/', Delimiter: '/', StartAfter }))
        return [...(r.Contents ?? []).map((o) => o.Key!), ...(r.CommonPrefixes ?? []).map((p) => p.Prefix!)]
      }
      expect(await after('list/a')).toContain('list/a/')
      expect(await after('list/a/')).not.toContain('list/a/')
      expect(await after('list/a/b')).not.toContain('list/a/') // list/a/c is after list/a/b, yet its prefix is gone
    })

    it('returns no user metadata in a listing', async () => {
      const url = await getSignedUrl(client, new ListObjectsV2Command({ Bucket, Prefix: 'list/dir/' }), { expiresIn: 60 })
      const xml = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text()
      expect(xml).toContain('<Key>list/dir/x</Key>')
      expect(xml).not.toMatch(/UserMetadata|<m>|x-amz-meta/i)
    })
  })

  describe('keys', () => {
    const key = (segments: number[]) => segments.map((n, i) => String.fromCharCode(97 + i).repeat(n)).join('/')

    it('takes 1024 bytes in all and 255 bytes a segment (counted in UTF-8), and refuses more with KeyTooLongError', async () => {
      // "keys/" and four segments of 200 with their slashes are 809 bytes.
      await put(`keys/${key([200, 200, 200, 200, 1024 - 809])}`)
      expect(await failure(put(`keys/${key([200, 200, 200, 200, 1025 - 809])}`))).toEqual({ code: 'KeyTooLongError', status: 400 })
      await put(`keys/${'s'.repeat(255)}`)
      expect(await status(put(`keys/${'s'.repeat(256)}`))).toBe(400)
      await put(`keys/${'\u00e9'.repeat(127)}`) // 254 bytes
      expect(await status(put(`keys/${'\u00e9'.repeat(128)}`))).toBe(400) // 256 bytes, 128 characters
    })

    it('refuses . and .. segments, and rewrites //, a leading / and \\ (so they alias other keys)', async () => {
      for (const name of ['keys/./x', 'keys/../x', 'keys/x/.', '.', '..']) expect(await failure(put(name))).toEqual({ code: 'InvalidRequest', status: 400 })
      await put('keys/alias//double', 'double')
      await put('/keys/alias/leading', 'leading')
      await put('keys/alias\\backslash', 'backslash')
      expect((await keys('keys/alias')).keys).toEqual(['keys/alias/backslash', 'keys/alias/double', 'keys/alias/leading'])
      expect((await read('keys/alias/double')).toString()).toBe('double')
      await put('keys/...', 'x') // other dot names are plain names
      await put('keys/.hidden', 'x')
      await put('keys/ctl\u0001\nname', 'x') // control characters are kept
      expect((await read('keys/ctl\u0001\nname')).toString()).toBe('x')
    })

    it('hides objects under a .uploads segment or a folder ending in .versions from listings', async () => {
      for (const name of ['.uploads/x', 'sub/.uploads/x', 'f.versions/x', 'file.versions', 'plain']) await put(`hidden/${name}`)
      expect((await keys('hidden/')).keys).toEqual(['hidden/file.versions', 'hidden/plain'])
      expect((await head('hidden/sub/.uploads/x')).ContentLength).toBe(1) // still there, only not listed
    })

    it('lets a file and a folder share a name, answers HEAD on any implied folder with a slash, and drops empty folders', async () => {
      await put('folders/name', 'file')
      await put('folders/name/child', 'child')
      expect(await keys('folders/', '/')).toEqual({ keys: ['folders/name'], prefixes: ['folders/name/'] })
      await put('folders/implied/child', 'x')
      expect(await status(head('folders/implied'))).toBe(404)
      const dir = await head('folders/implied/')
      expect([dir.ContentLength, dir.ContentType]).toEqual([0, 'application/x-directory'])
      await put('folders/marker/', Buffer.alloc(0))
      expect((await keys('folders/marker')).keys).toEqual(['folders/marker/'])
      await client.send(new DeleteObjectCommand({ Bucket, Key: 'folders/implied/child' }))
      expect(await keys('folders/implied', '/')).toEqual({ keys: [], prefixes: [] })
    })
  })

  describe('reads', () => {
    const body = randomBytes(1000)
    let ETag: string
    beforeAll(async () => {
      ETag = (await put('read/file', body)).ETag!
    })
    const get = (extra: Partial<GetObjectCommandInput>) => client.send(new GetObjectCommand({ Bucket, Key: 'read/file', ...extra }))

    it('answers ranges (one at a time: several are ignored), and 416 past the end', async () => {
      const r = await get({ Range: 'bytes=10-19' })
      expect([r.ContentRange, Buffer.from(await r.Body!.transformToByteArray()).equals(body.subarray(10, 20))]).toEqual(['bytes 10-19/1000', true])
      expect((await get({ Range: 'bytes=-5' })).ContentRange).toBe('bytes 995-999/1000')
      expect((await get({ Range: 'bytes=990-5000' })).ContentRange).toBe('bytes 990-999/1000')
      expect(await failure(get({ Range: 'bytes=5000-6000' }))).toEqual({ code: 'InvalidRange', status: 416 })
      const several = await get({ Range: 'bytes=0-1,5-6' })
      expect([several.$metadata.httpStatusCode, several.ContentLength]).toEqual([200, 1000])
    })

    it('answers If-None-Match with 304 and If-Match with 412, on GET and HEAD', async () => {
      expect(await status(get({ IfNoneMatch: ETag }))).toBe(304)
      expect(await status(get({ IfMatch: NO_SUCH_ETAG }))).toBe(412)
      expect((await get({ IfMatch: ETag, Range: 'bytes=0-0' })).ContentRange).toBe('bytes 0-0/1000')
      expect(await status(client.send(new HeadObjectCommand({ Bucket, Key: 'read/file', IfNoneMatch: ETag })))).toBe(304)
      expect(await status(client.send(new HeadObjectCommand({ Bucket, Key: 'read/file', IfMatch: NO_SUCH_ETAG })))).toBe(412)
    })

    it('honours a presigned GET\'s response overrides, and refuses the URL unsigned-modified, tampered or expired', async () => {
      const signed = await getSignedUrl(
        client,
        new GetObjectCommand({
          Bucket,
          Key: 'read/file',
          ResponseContentType: 'text/plain; charset=utf-8',
          ResponseContentDisposition: 'attachment; filename="x.html"; filename*=UTF-8\'\'%C3%A9.html',
          ResponseCacheControl: 'private, max-age=60',
        }),
        { expiresIn: 60 },
      )
      const ask = async (url: string, headers: Record<string, string> = {}) => {
        const r = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) })
        await r.arrayBuffer()
        return r
      }
      const r = await ask(signed)
      expect([r.status, r.headers.get('content-type'), r.headers.get('content-disposition'), r.headers.get('cache-control')]).toEqual([
        200,
        'text/plain; charset=utf-8',
        'attachment; filename="x.html"; filename*=UTF-8\'\'%C3%A9.html',
        'private, max-age=60',
      ])
      expect((await ask(signed, { range: 'bytes=0-9', 'if-none-match': ETag })).status).toBe(304)
      expect((await ask(signed.replace('text%2Fplain', 'text%2Fhtml'))).status).toBe(403)
      const plain = await getSignedUrl(client, new GetObjectCommand({ Bucket, Key: 'read/file' }), { expiresIn: 1 })
      expect((await ask(`${plain}&response-content-type=text%2Fhtml`)).status).toBe(403)
      await new Promise((resolve) => setTimeout(resolve, 2_100))
      expect((await ask(plain)).status).toBe(403)
    })
  })

  describe('deletes and moves', () => {
    it('deletes up to 1000 keys in one DeleteObjects, reporting absent keys as deleted', async () => {
      for (let i = 0; i < 5; i++) await put(`batch/${i}`)
      const r = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [...Array.from({ length: 5 }, (_, i) => ({ Key: `batch/${i}` })), { Key: 'batch/absent' }] } }))
      expect(r.Deleted?.map((d) => d.Key).sort()).toEqual(['batch/0', 'batch/1', 'batch/2', 'batch/3', 'batch/4', 'batch/absent'])
      expect(await keys('batch/')).toEqual({ keys: [], prefixes: [] })
      const tooMany = Array.from({ length: 1001 }, (_, i) => ({ Key: `batch/${i}` }))
      expect(await failure(client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: tooMany } })))).toEqual({ code: 'MalformedXML', status: 400 })
    })

    it('renames an object atomically with RenameObject, keeping ETag and metadata, with DestinationIfNoneMatch honoured', async () => {
      const { ETag } = await put('move/src', 'move me', { ContentType: 'text/x', Metadata: { a: '1' } })
      await client.send(new RenameObjectCommand({ Bucket, Key: 'move/dst', RenameSource: `${Bucket}/move/src` }))
      const moved = await head('move/dst')
      expect([moved.ETag, moved.ContentType, moved.Metadata]).toEqual([ETag, 'text/x', { a: '1' }])
      expect(await status(head('move/src'))).toBe(404)
      await put('move/taken', 'taken')
      expect(await status(client.send(new RenameObjectCommand({ Bucket, Key: 'move/taken', RenameSource: `${Bucket}/move/dst`, DestinationIfNoneMatch: '*' })))).toBe(412)
      await client.send(new RenameObjectCommand({ Bucket, Key: 'move/taken', RenameSource: `${Bucket}/move/dst` }))
      expect((await read('move/taken')).toString()).toBe('move me')
    })
  })
})
