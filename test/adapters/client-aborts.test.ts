/**
 * Clients that go away in the middle of an upload, against the service as a process: the request
 * stops at once, closes its temporary file (the process's descriptors go back to what they were)
 * and removes it, and what the request had created is removed too (a form is all or nothing). A
 * tus PATCH keeps the bytes it received, as tus resumes from them.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tmpFiles } from '../helpers/disk-store.js'
import { openRawRequest, rawRequest } from '../helpers/http.js'
import { filesUnder, holdings, waitUntilReleased } from '../helpers/leftovers.js'
import { type ProcessService, spawnService } from '../helpers/process-service.js'
import { waitFor } from '../helpers/wait.js'

const BOUNDARY = 'cut-form-boundary'
const PREFIX = 256 * 1024 // what each cut request sends of its body before the cut

let dir: string
let svc: ProcessService
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'filestorage-aborts-'))
  svc = await spawnService({ STORAGE_DIR: dir })
})
afterAll(async () => {
  await svc?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** Non-empty files in the store's temporary folders: what uploads in flight are writing. */
async function temporaryFilesWritten(): Promise<string[]> {
  const files = (await tmpFiles(dir)).map((f) => join(dir, '.filestorage', f))
  const sizes = await Promise.all(files.map((f) => stat(f).then((s) => s.size, () => 0)))
  return files.filter((_, i) => (sizes[i] ?? 0) > 0)
}

/**
 * Sends `head` and a prefix of the body, waits until the upload is under way (a temporary file
 * is being written, and `started` holds), cuts the connection, then waits until the request let go
 * of everything: as many descriptors as before, and the same files in the store. "Under way" is
 * read from the store, not from a descriptor count over the baseline: work the process does right
 * after start-up (its first sweep) can hold a descriptor while the baseline is taken.
 */
async function cutRequest(head: string, body: Buffer, started: () => Promise<boolean> = async () => true): Promise<void> {
  const before = await holdings(svc, dir)
  const socket = await openRawRequest(svc.origin, head, body)
  await waitFor('the upload to be under way', async () => (await temporaryFilesWritten()).length > 0 && (await started()), { timeoutMs: 10_000 })
  socket.destroy()
  await waitUntilReleased(svc, dir, before)
}

const head = (method: string, target: string, headers: Record<string, string>) =>
  `${method} /filestorage/v1/disk/${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
  Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
  '\r\n'

const payload = (size: number) => Buffer.alloc(size, 'x')

describe('a client that goes away mid-upload', () => {
  it('form upload: the files the request created are removed, and its open file is closed and removed', async () => {
    const form = Buffer.concat([
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="first.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n` +
          `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="second.bin"\r\n\r\n`,
      ),
      payload(PREFIX),
    ])
    await cutRequest(
      head('POST', 'upload/form-cut', { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}`, 'Content-Length': String(10 * 1024 * 1024) }),
      form,
      async () => (await filesUnder(dir)).some((f) => f.endsWith('/form-cut/first.txt')),
    )
    const list = await rawRequest(svc.origin, 'GET', '/filestorage/v1/disk/list/')
    expect(list.json<{ entries: unknown[] }>().entries).toEqual([])
  })

  it('PUT: the temporary file is closed and removed, and nothing is stored', async () => {
    await cutRequest(
      head('PUT', 'upload/put-cut.bin', { 'Content-Length': String(10 * 1024 * 1024) }),
      payload(PREFIX),
    )
  })

  it('uploadpart: the part is not kept, and the upload stays open', async () => {
    const created = await rawRequest(svc.origin, 'POST', '/filestorage/v1/disk/createupload/part-cut.bin')
    const { uploadId } = created.json<{ uploadId: string }>()
    await cutRequest(
      head('PUT', `uploadpart/${uploadId}?part=1`, { 'Content-Length': String(10 * 1024 * 1024) }),
      payload(PREFIX),
    )
    const status = await rawRequest(svc.origin, 'GET', `/filestorage/v1/disk/uploadstatus/${uploadId}`)
    expect(status.status).toBe(200)
    expect(status.json<{ parts: unknown[] }>().parts).toEqual([])
  })

  it('tus PATCH: the bytes received are kept, and the request lets go of everything', async () => {
    const tus = { 'Tus-Resumable': '1.0.0' }
    const created = await rawRequest(svc.origin, 'POST', '/filestorage/v1/disk/tus/', {
      headers: { ...tus, 'Upload-Length': String(10 * 1024 * 1024) },
    })
    expect(created.status).toBe(201)
    const location = new URL(String(created.headers.location), svc.origin).pathname
    const baseline = await svc.openFds()
    const socket = await openRawRequest(
      svc.origin,
      `PATCH ${location} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
        `Content-Type: application/offset+octet-stream\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`,
      payload(PREFIX),
    )
    await new Promise((resolve) => socket.write('', resolve)) // the prefix has left this process
    await new Promise((resolve) => setTimeout(resolve, 200))
    socket.destroy()
    await waitFor('the cut PATCH to close its descriptors', async () => (await svc.openFds()) <= baseline, { timeoutMs: 5000 })
    const status = await rawRequest(svc.origin, 'HEAD', location, { headers: tus })
    expect(Number(status.headers['upload-offset'])).toBe(PREFIX)
  })
})
