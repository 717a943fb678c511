/**
 * Server-side copies of an object: one CopyObject up to 5 GiB (S3's limit), else a multipart upload
 * of the target made of UploadPartCopy ranges of the source, which the caller completes with its
 * conditions. The bytes never pass through the service.
 */
import { CopyObjectCommand, type CopyObjectCommandInput, UploadPartCopyCommand } from '@aws-sdk/client-s3'
import { forEachLimited } from '../for-each-limited.js'
import type { Bucket } from './bucket.js'
import { abortMultipart, MAX_S3_PARTS, type ObjectTarget, type OpenMultipart } from './object-upload.js'

/** The largest object one CopyObject copies (AWS). */
export const MAX_SINGLE_COPY = 5 * 1024 ** 3
/** Ranges of a copy in parts: at least this, within S3's 10,000 parts. */
const COPY_PART = 1024 ** 3
const COPY_CONCURRENCY = 4

/** Copies `sourceKey` (while it is at `sourceEtag`) onto `target` in one request, under `extra` (conditions, metadata directive). */
export async function copyObject(bucket: Bucket, sourceKey: string, sourceEtag: string | undefined, targetKey: string, extra: Partial<CopyObjectCommandInput> = {}): Promise<void> {
  await bucket.client.send(
    new CopyObjectCommand({
      Bucket: bucket.name,
      Key: targetKey,
      CopySource: bucket.copySource(sourceKey),
      ...(sourceEtag !== undefined ? { CopySourceIfMatch: sourceEtag } : {}),
      ...extra,
    }),
  )
}

/**
 * Copies `sourceKey` (while it is at `sourceEtag`, `size` bytes) into a new multipart upload of
 * `target`, range by range; the upload is left open for the caller to complete (or abort).
 */
export async function copyInParts(bucket: Bucket, sourceKey: string, sourceEtag: string | undefined, size: number, target: ObjectTarget): Promise<OpenMultipart> {
  const { uploadId, claim } = await bucket.claims.create(target)
  const upload: OpenMultipart = { key: target.key, uploadId, parts: [], ...(claim !== undefined ? { claim } : {}) }
  const partSize = Math.max(COPY_PART, Math.ceil(size / MAX_S3_PARTS))
  const ranges = Array.from({ length: Math.max(1, Math.ceil(size / partSize)) }, (_, i) => ({
    start: i * partSize,
    end: Math.min(size, (i + 1) * partSize) - 1,
  }))
  try {
    await forEachLimited(ranges, COPY_CONCURRENCY, async (range, i) => {
      const r = await bucket.client.send(
        new UploadPartCopyCommand({
          Bucket: bucket.name,
          Key: target.key,
          UploadId: upload.uploadId,
          PartNumber: i + 1,
          CopySource: bucket.copySource(sourceKey),
          ...(size > 0 ? { CopySourceRange: `bytes=${range.start}-${range.end}` } : {}),
          ...(sourceEtag !== undefined ? { CopySourceIfMatch: sourceEtag } : {}),
        }),
      )
      upload.parts.push({ PartNumber: i + 1, ETag: r.CopyPartResult?.ETag ?? '' })
    })
  } catch (e) {
    await abortMultipart(bucket, upload).catch(() => {})
    throw e
  }
  upload.parts.sort((a, b) => a.PartNumber - b.PartNumber)
  return upload
}
