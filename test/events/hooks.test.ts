/**
 * Blocking hooks over real HTTP (issue 21): a pre-upload hook asked before a PUT, each file of a
 * form, a createupload and a tus creation, and a pre-delete hook before a delete; each request
 * verified with the reference `standardwebhooks` library. A hook may refuse (the client gets its
 * 4xx, `rejected_by_hook`, its message in `details`), add metadata, or be down: refused with `503
 * hook_unavailable`, or let through with HOOK_FAILURE_POLICY=allow. Nothing of a refused upload is kept.
 */
import { randomBytes } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { TUS_HEADERS, uploadMetadata } from '../helpers/tus.js'
import { type Answer, type Delivery, newSecret, type Receiver, startReceiver } from '../helpers/webhook-receiver.js'

const started: { stop(): Promise<void> }[] = []
afterEach(async () => {
  for (const s of started.splice(0).reverse()) await s.stop().catch(() => {})
})

const secret = newSecret()

async function hook(answer: Answer): Promise<Receiver> {
  const r = await startReceiver([secret], answer)
  started.push({ stop: () => r.close() })
  return r
}

async function service(env: Record<string, string>): Promise<TestService> {
  const svc = await startTestService({ HOOK_SECRET: secret, ...env })
  started.push(svc)
  return svc
}

const json = { 'Content-Type': 'application/json' }
const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string; details?: { status: number; message: string } } }).error

describe('the pre-upload hook', () => {
  test('is asked before every way in; it adds metadata, or refuses with its own 4xx and message, and nothing is kept', async () => {
    const asked: Delivery[] = []
    const h = await hook((d) => {
      asked.push(d)
      if (d.data.path.includes('refused')) return { status: 422, headers: json, body: JSON.stringify({ message: 'no .exe here' }) }
      if (d.data.path.includes('plain403')) return { status: 403 }
      return { status: 200, headers: json, body: JSON.stringify({ metadata: { scanned: true } }) }
    })
    const svc = await service({ PRE_UPLOAD_HOOK_URL: h.url })
    const api = `${svc.api}/disk`
    const ok = await fetch(`${api}/upload/in/a.txt`, {
      method: 'PUT',
      headers: { 'X-File-Metadata': '{"by":"ana"}', 'X-Request-Id': 'up-1', 'Content-Type': 'text/plain' },
      body: 'hello',
    })
    expect(ok.status).toBe(201)
    expect(((await ok.json()) as { metadata: unknown }).metadata).toEqual({ by: 'ana', scanned: true })
    expect(asked[0]!.type).toBe('pre-upload')
    expect(asked[0]!.data).toMatchObject({ schemaVersion: 1, operation: 'upload', store: 'disk', path: 'in/a.txt', size: 5, contentType: 'text/plain', metadata: { by: 'ana' }, subject: 'anonymous', requestId: 'up-1' })

    const refused = await fetch(`${api}/upload/in/refused.exe`, { method: 'PUT', body: 'MZ' })
    expect(refused.status).toBe(422)
    expect(await errorOf(refused)).toMatchObject({ code: 'rejected_by_hook', details: { status: 422, message: 'no .exe here' } })
    const plain = await fetch(`${api}/upload/in/plain403.txt`, { method: 'PUT', body: 'x' })
    expect(plain.status).toBe(403)
    expect(await errorOf(plain)).toMatchObject({ code: 'rejected_by_hook', details: { status: 403 } })
    for (const path of ['in/refused.exe', 'in/plain403.txt']) expect((await fetch(`${api}/info/${path}`)).status).toBe(404)

    // A form: each file is asked; a refusal undoes the files this request created.
    const form = new FormData()
    form.append('file', new Blob(['1']), 'one.txt')
    form.append('file', new Blob(['2']), 'refused.txt')
    const formed = await fetch(`${api}/upload/form`, { method: 'POST', body: form })
    expect(formed.status).toBe(422)
    expect((await fetch(`${api}/info/form/one.txt`)).status).toBe(404)
    expect(asked.filter((d) => d.data.operation === 'uploadForm').map((d) => d.data.path)).toEqual(['form/one.txt', 'form/refused.txt'])

    const created = await fetch(`${api}/createupload/parts/refused.bin`, { method: 'POST', headers: json, body: '{}' })
    expect(created.status).toBe(422)
    const partsOk = await fetch(`${api}/createupload/parts/ok.bin`, { method: 'POST', headers: json, body: '{}' })
    expect(partsOk.status).toBe(201)

    const tus = await fetch(`${api}/tus/`, { method: 'POST', headers: { ...TUS_HEADERS, 'Upload-Length': '3', 'Upload-Metadata': uploadMetadata({ path: 'tus/refused.bin' }) } })
    expect(tus.status).toBe(422)
    expect(tus.headers.get('tus-resumable')).toBe('1.0.0')
    expect((await errorOf(tus)).code).toBe('rejected_by_hook')
    expect(asked.find((d) => d.data.operation === 'tusCreate')!.data).toMatchObject({ path: 'tus/refused.bin', size: 3 })
    expect(h.invalid).toEqual([])
  })

  test('a hook that is down (5xx, no answer in time, refused connection) refuses the change, or lets it through with HOOK_FAILURE_POLICY=allow', async () => {
    const failing = await hook(() => ({ status: 500 }))
    const slow = await hook(() => 'hang')
    const closed = await hook(() => ({ status: 200 }))
    await closed.close()
    for (const url of [failing.url, slow.url, closed.url]) {
      const refusing = await service({ PRE_UPLOAD_HOOK_URL: url, HOOK_TIMEOUT: '300ms' })
      const res = await fetch(`${refusing.api}/disk/upload/x.txt`, { method: 'PUT', body: 'x' })
      expect(res.status, url).toBe(503)
      expect((await errorOf(res)).code).toBe('hook_unavailable')
      const allowing = await service({ PRE_UPLOAD_HOOK_URL: url, HOOK_TIMEOUT: '300ms', HOOK_FAILURE_POLICY: 'allow' })
      expect((await fetch(`${allowing.api}/disk/upload/x.txt`, { method: 'PUT', body: 'x' })).status, url).toBe(201)
    }
  })
})

describe('the pre-delete hook', () => {
  test('may refuse a delete; one it allows goes, with its event', async () => {
    const asked: Delivery[] = []
    const h = await hook((d) => {
      asked.push(d)
      return d.data.path === 'keep.txt' ? { status: 409, body: 'legal hold' } : { status: 204 }
    })
    const events = await startReceiver([secret])
    started.push({ stop: () => events.close() })
    const file = join(tmpdir(), `hooks-${randomBytes(4).toString('hex')}.json`)
    started.push({ stop: () => rm(file, { force: true }) })
    await writeFile(
      file,
      JSON.stringify({ endpoints: [{ name: 'e', url: events.url, secret }], hooks: { 'pre-delete': { url: h.url, secret, timeout: '2s', onFailure: 'refuse' } } }),
    )
    const svc = await startTestService({ EVENTS_CONFIG: file })
    started.push(svc)
    const api = `${svc.api}/disk`
    for (const p of ['keep.txt', 'go.txt']) expect((await fetch(`${api}/upload/${p}`, { method: 'PUT', body: p })).status).toBe(201)
    const kept = await fetch(`${api}/delete/keep.txt`, { method: 'DELETE' })
    expect(kept.status).toBe(409)
    expect(await errorOf(kept)).toMatchObject({ code: 'rejected_by_hook', details: { status: 409, message: 'legal hold' } })
    expect((await fetch(`${api}/delete/go.txt`, { method: 'DELETE' })).status).toBe(204)
    expect((await fetch(`${api}/info/keep.txt`)).status).toBe(200)
    expect(h.invalid).toEqual([])
    expect(asked.map((d) => [d.type, d.data.operation, d.data.path])).toEqual([
      ['pre-delete', 'delete', 'keep.txt'],
      ['pre-delete', 'delete', 'go.txt'],
    ])
    await events.until(() => events.taken.length === 3, 10_000)
    // go.txt's two events in order; keep.txt's may come before or after them.
    expect(events.taken.map((d) => `${d.type} ${d.data.path}`).filter((e) => e.endsWith('go.txt'))).toEqual(['file.created go.txt', 'file.deleted go.txt'])
    expect(events.taken.map((d) => `${d.type} ${d.data.path}`).filter((e) => e.endsWith('keep.txt'))).toEqual(['file.created keep.txt'])
  })
})
