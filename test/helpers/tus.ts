/**
 * What the tus suites share: the stores they run on, and small tus requests.
 *
 * The suites run on `disk` always, on `mongo` when MONGODB_URI points at a MongoDB-wire server, and
 * on `s3` when the run has an S3 server (S3_ENDPOINT, S3_TEST_BUCKET) (requireService: under
 * CI=true a missing one fails the run). The service must then report a
 * `mongo` store on /check; a suite asserts that before it starts.
 */
import { expect } from 'vitest'
import { requireService } from './external.js'
import { randomDbName } from './mongo.js'
import { s3StoreEnv, s3TestTarget } from './s3-store.js'

export const TUS_HEADERS = { 'Tus-Resumable': '1.0.0' }
export const OFFSET_STREAM = 'application/offset+octet-stream'

/** The stores the tus suites run on. */
export function tusStores(): string[] {
  return [
    'disk',
    ...(requireService('MONGODB_URI', 'tus on the mongo store') ? ['mongo'] : []),
    ...(s3TestTarget() ? ['s3'] : []),
  ]
}

/** Environment for a service serving `store`: the MongoDB settings for `mongo` (one database per suite), the bucket and a key prefix of its own for `s3`. */
export function storeEnv(store: string, database = randomDbName('tus')): Record<string, string> {
  if (store === 's3') return s3StoreEnv()
  return store === 'mongo' ? { MONGODB_URI: process.env.MONGODB_URI!, MONGODB_DB: database } : {}
}

/** Fails unless the service at `api` serves `store` (a mongo run before the mongo store exists fails here, loudly). */
export async function expectStoreServed(api: string, store: string): Promise<void> {
  const check = (await (await fetch(`${api}/check`)).json()) as { stores: Record<string, { status: string }> }
  expect(Object.keys(check.stores), `the service at ${api} does not serve a "${store}" store`).toContain(store)
}

/** `Upload-Metadata` from a plain object. */
export const uploadMetadata = (entries: Record<string, string>): string =>
  Object.entries(entries)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',')

/** POST a creation; returns the response and the upload's URL. */
export async function createTusUpload(collection: string, headers: Record<string, string>, body?: Uint8Array | string) {
  const res = await fetch(collection, { method: 'POST', headers: { ...TUS_HEADERS, ...headers }, ...(body !== undefined ? { body } : {}) })
  return { res, location: res.headers.get('location') ?? '' }
}

export function patchTus(url: string, offset: number, body: Uint8Array | string, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'PATCH',
    headers: { ...TUS_HEADERS, 'Content-Type': OFFSET_STREAM, 'Upload-Offset': String(offset), ...headers },
    body,
  })
}

export const headTus = (url: string, headers: Record<string, string> = TUS_HEADERS) => fetch(url, { method: 'HEAD', headers })

/** HEAD's `Upload-Offset`, asserting the 200. */
export async function tusOffset(url: string): Promise<number> {
  const res = await headTus(url)
  expect(res.status).toBe(200)
  return Number(res.headers.get('upload-offset'))
}
