/** The global setup hands the real services to the suites (or, outside CI, says why it could not). */
import { describe, expect, it } from 'vitest'
import { requireService } from '../helpers/external.js'
import { s3Client, s3Target, uniqueBucket } from '../helpers/seaweedfs.js'

describe('real services for this run', () => {
  const uri = requireService('MONGODB_URI', 'MongoDB-wire server')
  const consul = requireService('CONSUL_HTTP_ADDR', 'Consul agent')
  const s3 = s3Target()

  it.runIf(uri !== undefined)('MONGODB_URI points at a server that answers', async () => {
    const { MongoClient } = await import('mongodb')
    const client = new MongoClient(uri!, { serverSelectionTimeoutMS: 5000 })
    try {
      expect((await client.db('admin').command({ ping: 1 })).ok).toBe(1)
    } finally {
      await client.close()
    }
  })

  it.runIf(consul !== undefined)('CONSUL_HTTP_ADDR points at an agent with a leader', async () => {
    const res = await fetch(`http://${consul}/v1/status/leader`, { signal: AbortSignal.timeout(5000) })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatch(/^127\.0\.0\.1:\d+$/)
  })

  it.runIf(s3 !== undefined)('S3_ENDPOINT points at a gateway that takes writes signed with the exported credentials, and only those', async () => {
    const { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand } = await import('@aws-sdk/client-s3')
    expect(s3!.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const client = s3Client(s3!)
    const forger = s3Client({ ...s3!, secretAccessKey: 'not-the-secret' }, { maxAttempts: 1 })
    const Bucket = uniqueBucket('services')
    try {
      await client.send(new CreateBucketCommand({ Bucket }))
      await client.send(new PutObjectCommand({ Bucket, Key: 'hello', Body: 'world' }))
      expect(await (await client.send(new GetObjectCommand({ Bucket, Key: 'hello' }))).Body!.transformToString()).toBe('world')
      await expect(forger.send(new GetObjectCommand({ Bucket, Key: 'hello' }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } })
      await client.send(new DeleteObjectCommand({ Bucket, Key: 'hello' }))
      await client.send(new DeleteBucketCommand({ Bucket }))
    } finally {
      client.destroy()
      forger.destroy()
    }
  })
})
