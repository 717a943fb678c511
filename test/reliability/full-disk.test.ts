/**
 * Full disk (issue 10, findings 6 and 8): a 64 MiB tmpfs as STORAGE_DIR, filled through the API.
 * Then every kind of write answers 507 insufficient_storage (or 503), leaves nothing behind and
 * harms no stored file; /check reports the store degraded; a DELETE frees space and writes work
 * again, and /check recovers on its own. On Node and on Bun (refused uploads whose bodies Bun reads).
 */
import { randomBytes } from 'node:crypto'
import { statfs } from 'node:fs/promises'
import { afterAll, expect, test } from 'vitest'
import { type ProcessService, RUNTIMES } from '../helpers/process-service.js'
import { sha256 } from '../helpers/streams.js'
import { waitFor } from '../helpers/wait.js'
import { expectNone } from './expect-none.js'
import { report, sleep, startBuilt, trackPeakRss, treeEntries } from './harness.js'
import { FULL_DISK } from './knobs.js'
import { mountTmpfs } from './mount.js'
import { readDownload } from './reads.js'

const FULL_STATUSES = [507, 503]
const FULL_CODES = ['insufficient_storage', 'store_unavailable']
const SWEEP_SECONDS = 1

let svc: ProcessService | undefined
afterAll(async () => {
  await svc?.stop('SIGKILL')
})

/** What a write answered, as `status code` (the JSON error's code), for the report. */
async function outcome(res: Response): Promise<{ status: number; code: string }> {
  const text = await res.text()
  let code = ''
  try {
    code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? ''
  } catch {
    code = `(not JSON: ${text.slice(0, 60)})`
  }
  return { status: res.status, code }
}

test.for(RUNTIMES)('on %s, a full disk: every write refused with 507 (or 503), nothing left behind, /check degraded; a DELETE frees space and writes work again', async (runtime, ctx) => {
  const mount = await mountTmpfs(FULL_DISK.tmpfsMiB)
  if (!mount) {
    ctx.skip()
    return
  }
  const problems: string[] = []
  try {
    svc = await startBuilt({ STORAGE_DIR: mount.path, SWEEP_INTERVAL_SECONDS: String(SWEEP_SECONDS) }, { runtime })
    const running = svc
    const rss = trackPeakRss(() => [running])
    const api = svc.api
    const put = (path: string, body: Buffer) => fetch(`${api}/disk/upload/${path}`, { method: 'PUT', body, headers: { 'Content-Type': 'application/pdf' } })

    // Fill it: large files, then smaller ones, until even a small one is refused.
    const stored: { path: string; sha: string }[] = []
    let refusals = 0
    for (const size of [FULL_DISK.fillFileBytes, 256 * 1024, 16 * 1024, 1024, 1]) {
      for (let k = 0; k < 64; k++) {
        const path = `fill/${size}-${k}.pdf`
        const body = randomBytes(size)
        const res = await put(path, body)
        if (res.status === 201) {
          await res.body?.cancel()
          stored.push({ path, sha: sha256(body) })
          continue
        }
        const o = await outcome(res)
        refusals++
        if (!FULL_STATUSES.includes(o.status) || !FULL_CODES.includes(o.code)) problems.push(`filling: PUT of ${size} bytes answers ${o.status} ${o.code}`)
        break
      }
    }
    expect(stored.length, 'the disk took no file at all').toBeGreaterThan(5)
    expect(refusals, 'the disk never filled up').toBeGreaterThan(0)
    await sleep(SWEEP_SECONDS * 2000)
    const before = new Set((await treeEntries(mount.path)).map((e) => `${e.type} ${e.path}`))
    const freeBefore = (await statfs(mount.path)).bfree

    // Every kind of write, each larger than what is left.
    const body = randomBytes(256 * 1024)
    const refused = async (what: string, res: Response) => {
      const o = await outcome(res)
      if (!FULL_STATUSES.includes(o.status) || !FULL_CODES.includes(o.code)) problems.push(`${what} on a full disk answers ${o.status} ${o.code}, not 507 insufficient_storage (or 503)`)
      return o
    }
    await refused('PUT of a new file', await put('full/new.pdf', body))
    await refused('PUT replacing a file', await put(stored[0]!.path, body))
    const boundary = 'reliabilityfull'
    const form = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="form.pdf"\r\nContent-Type: application/pdf\r\n\r\n`),
      body,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ])
    await refused('a form upload', await fetch(`${api}/disk/upload/full`, { method: 'POST', body: form, headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } }))
    const created = await fetch(`${api}/disk/createupload/full/parts.pdf`, { method: 'POST' })
    if (created.status === 201) {
      const { uploadId } = (await created.json()) as { uploadId: string }
      await refused('uploadpart', await fetch(`${api}/disk/uploadpart/${uploadId}?part=1`, { method: 'PUT', body }))
      await (await fetch(`${api}/disk/abortupload/${uploadId}`, { method: 'DELETE' })).body?.cancel()
    } else await refused('createupload', created)
    const tus = { 'Tus-Resumable': '1.0.0' }
    const tusCreated = await fetch(`${api}/disk/tus/`, {
      method: 'POST',
      headers: { ...tus, 'Upload-Length': String(body.length), 'Upload-Metadata': `path ${Buffer.from('full/tus.pdf').toString('base64')}` },
    })
    if (tusCreated.status === 201) {
      const location = tusCreated.headers.get('location')!
      await tusCreated.body?.cancel()
      await refused('a tus PATCH', await fetch(location, { method: 'PATCH', body, headers: { ...tus, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' } }))
      await (await fetch(location, { method: 'DELETE', headers: tus })).body?.cancel()
    } else await refused('a tus creation', tusCreated)

    // Nothing left behind, once a sweep ran; the replaced file is intact.
    await sleep(SWEEP_SECONDS * 2000)
    const after = new Set((await treeEntries(mount.path)).map((e) => `${e.type} ${e.path}`))
    const added = [...after].filter((e) => !before.has(e))
    if (added.length) problems.push(`refused writes left ${added.length} entries behind: ${added.slice(0, 6).join(', ')}`)
    const freeAfter = (await statfs(mount.path)).bfree
    if (freeAfter < freeBefore) problems.push(`refused writes left ${(freeBefore - freeAfter) * (await statfs(mount.path)).bsize} bytes in use`)
    const kept = await readDownload(api, 'disk', stored[0]!.path)
    const keptMismatch = kept.seen?.sha256 === stored[0]!.sha ? 0 : 1
    if (keptMismatch) problems.push(`the file a refused PUT would have replaced is harmed (download ${kept.status})`)

    const check = await fetch(`${api}/check`)
    const checkBody = await check.text()
    if (check.status === 200) problems.push(`/check answers 200 on a full disk (${checkBody.slice(0, 160)}): a load balancer keeps sending uploads here`)

    // Space freed by a DELETE: writes work again at once.
    for (const s of stored.slice(0, 2)) expect((await fetch(`${api}/disk/delete/${s.path}`, { method: 'DELETE' })).status).toBe(204)
    const again = await put('full/after-delete.pdf', randomBytes(1024 * 1024))
    if (again.status !== 201) problems.push(`a PUT after a DELETE freed space answers ${again.status}`)
    await again.body?.cancel()
    // /check recovers on its own once the free space is above the reserve the store keeps for the
    // commits in flight (16 MiB: MIN_FREE_BYTES in src/storage/disk/disk-health.ts), not before:
    // free half the disk.
    for (const s of stored.slice(2)) {
      const { bavail, bsize } = await statfs(mount.path)
      if (bavail * bsize >= (FULL_DISK.tmpfsMiB / 2) * 1024 * 1024) break
      expect((await fetch(`${api}/disk/delete/${s.path}`, { method: 'DELETE' })).status).toBe(204)
    }
    await waitFor('/check to recover once space is free', async () => (await fetch(`${api}/check`)).status === 200, { timeoutMs: 10_000 }).catch((e: Error) =>
      problems.push(e.message),
    )
    const peakRssMiB = await rss.stop()
    await svc.stop('SIGTERM')
    await report(runtime === 'node' ? 'full disk' : 'full disk on Bun', { readsAudited: 1, mismatches: keptMismatch, leftoversFound: added.length, peakRssMiB, failed: problems })
    expectNone(problems, 'on a full disk')
  } finally {
    await svc?.stop('SIGKILL')
    await mount.unmount()
  }
})
