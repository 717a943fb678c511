/**
 * What an s3 store keeps in its bucket beside its files, counted from outside with another S3
 * client, without knowing the store's layout beyond its reserved folder: once every upload is
 * finished and a sweep ran, only small records may stay under `<prefix>.filestorage/` (upload
 * records until they expire, digests); a "leftover" is an object there larger than any record can
 * be, an object outside it that is not a stored file, or a multipart upload still open (its parts
 * are billed, invisible).
 */
import { ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand } from '@aws-sdk/client-s3'
import { s3TestTarget } from '../helpers/s3-store.js'
import { s3Client } from '../helpers/seaweedfs.js'
import { RECORD_MAX_BYTES } from './harness.js'

export async function s3Leftovers(env: Record<string, string>, storedPaths: string[]): Promise<{ found: number; bytes: number; detail: string[] }> {
  const target = s3TestTarget()!
  const client = s3Client(target, { maxAttempts: 3 })
  const Bucket = env.S3_BUCKET!
  const prefix = env.S3_PREFIX!
  const stored = new Set(storedPaths)
  const detail: string[] = []
  let bytes = 0
  try {
    let ContinuationToken: string | undefined
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }))
      for (const o of page.Contents ?? []) {
        const name = o.Key!.slice(prefix.length)
        const internal = name.startsWith('.filestorage/')
        if (internal ? (o.Size ?? 0) > RECORD_MAX_BYTES : !stored.has(name)) {
          detail.push(`${name} (${o.Size} bytes)`)
          bytes += o.Size ?? 0
        }
      }
      ContinuationToken = page.NextContinuationToken
    } while (ContinuationToken)
    const open = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix }))
    for (const upload of open.Uploads ?? []) {
      const parts = await client.send(new ListPartsCommand({ Bucket, Key: upload.Key, UploadId: upload.UploadId }))
      const size = (parts.Parts ?? []).reduce((sum, p) => sum + (p.Size ?? 0), 0)
      detail.push(`an open multipart upload of ${upload.Key!.slice(prefix.length)} (${size} bytes in parts)`)
      bytes += size
    }
  } finally {
    client.destroy()
  }
  return { found: detail.length, bytes, detail }
}

/** The port of the store's S3 server, whose connections (a pool) are no leak. */
export const s3Port = (env: Record<string, string>): number => Number(new URL(env.S3_ENDPOINT!).port)
