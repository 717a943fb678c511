/**
 * s3 stores for tests, on the run's SeaweedFS (test/setup/services.ts): each store under a key
 * prefix of its own in the bucket the run shares (S3_TEST_BUCKET), so that suites and tests never
 * see each other's files, and an SDK client to look at the bucket from outside, as an operator
 * would with the aws cli.
 */
import { randomBytes } from 'node:crypto'
import { ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3'
import { S3Driver, type S3DriverOptions, type DriverStore, type UploadPolicy, withUploads } from '../../src/storage/index.js'
import { requireService } from './external.js'
import { s3Client, type S3Target, s3Target } from './seaweedfs.js'

export type S3Store = DriverStore<S3Driver>

export interface S3TestTarget extends S3Target {
  bucket: string
}

/** The run's S3 server and bucket, or undefined (suite skipped; a failure under CI=true) when there is none. */
export function s3TestTarget(): S3TestTarget | undefined {
  const target = s3Target()
  if (!target) return undefined
  const bucket = requireService('S3_TEST_BUCKET', 'the s3 store')
  return bucket ? { ...target, bucket } : undefined
}

/** A key prefix no other store of the run uses. */
export const uniquePrefix = (what: string): string => `${what}-${randomBytes(5).toString('hex')}/`

/** An s3 store on `target`, under a fresh prefix unless one is given, its uploads under `uploads`. */
export function openS3Store(target: S3TestTarget, options: Partial<S3DriverOptions> & { uploads?: Partial<UploadPolicy> } = {}): S3Store {
  const { uploads, ...driver } = options
  return withUploads(
    S3Driver.open({
      bucket: target.bucket,
      endpoint: target.endpoint,
      region: target.region,
      credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
      prefix: uniquePrefix('store'),
      // As the service does: open multipart uploads older than the upload expiry are orphans.
      ...(uploads?.ttlMs !== undefined ? { orphanAgeMs: uploads.ttlMs } : {}),
      ...driver,
    }),
    uploads,
  )
}

/** The variables of a service serving the s3 store on the run's SeaweedFS, under a fresh prefix (credentials come from the environment). */
export function s3StoreEnv(prefix = uniquePrefix('svc')): Record<string, string> {
  const target = s3TestTarget()
  if (!target) return {}
  return { S3_BUCKET: target.bucket, S3_ENDPOINT: target.endpoint, S3_REGION: target.region, S3_PREFIX: prefix }
}

/** An SDK client on the run's S3 server, to look at the bucket as another tool would. */
export function outsideClient(target: S3TestTarget): S3Client {
  return s3Client(target, { maxAttempts: 1 })
}

/** Multipart uploads still open under `prefix`. */
export async function openMultipartUploads(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }))
  return (r.Uploads ?? []).map((u) => u.Key!)
}
