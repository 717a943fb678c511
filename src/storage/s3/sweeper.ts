/**
 * What the s3 store's own operations leave behind when a process dies (or a request to S3 fails)
 * part way, reclaimed by the sweep, each with a bounded amount of work per sweep (a listing resumes
 * where the previous sweep stopped):
 *
 * - multipart uploads left open (a PUT or a completion cut short, a staged part's) older than the
 *   upload expiry: aborted. S3 keeps them, invisible and billed, until then (SeaweedFS forever).
 *   Only the store's own (multipart-claims.ts): another tool's in the same bucket or prefix stay;
 * - staged bytes no part record names (a part re-sent while it was being replaced, a part writer
 *   killed before its record), upload folders without a record, expiry entries without a record;
 * - digests of versions no longer at any of their paths, records of hashes of objects since changed;
 * - moves whose process stopped (their journal not rewritten for two minutes): finished;
 * - marks of changes whose writer died (change-marks.ts), once their intent is settled.
 *
 * Nothing younger than an hour is touched (beyond open multipart uploads, which wait for the upload
 * expiry), so nothing a live operation is still writing or reading goes.
 */
import { intentsOf } from '../events/types.js'
import type { Bucket, ListedObject } from './bucket.js'
import type { Mark } from './change-marks.js'
import type { S3EventLog } from './event-log.js'
import type { Digests, DigestRecord, HashRecord } from './digests.js'
import { INTERNAL, type S3Keys } from './keys.js'
import { JOURNAL_STALE_MS, type Moves } from './moves.js'
import { decodeAttributes } from './object-attributes.js'
import type { S3Staging } from './staging.js'

/** Leftovers younger than this are never touched. */
export const LEFTOVER_GRACE_MS = 60 * 60 * 1000
/** Keys one category looks at per sweep. */
const KEYS_PER_SWEEP = 2_000

export class S3Sweeper {
  /** Where each category's listing resumes at the next sweep. */
  readonly #resume = new Map<string, string>()

  constructor(
    private readonly bucket: Bucket,
    private readonly keys: S3Keys,
    private readonly staging: S3Staging,
    private readonly digests: Digests,
    private readonly moves: Moves,
    /** Open multipart uploads older than this are aborted (the upload expiry). */
    private readonly orphanAgeMs: number,
    private readonly events: S3EventLog,
  ) {}

  async sweep(now: Date): Promise<number> {
    let removed = await this.#finishMoves(now)
    removed += await this.bucket.claims.sweep(new Date(now.getTime() - this.orphanAgeMs))
    removed += await this.#uploadLeftovers(now)
    removed += await this.#expiryLeftovers(now)
    removed += await this.#digests(now)
    removed += await this.#hashes(now)
    removed += await this.#marks(now)
    return removed
  }

  /** Marks of changes (change-marks.ts) whose entry is no longer an intent: left by a writer that died. */
  async #marks(now: Date): Promise<number> {
    let removed = 0
    await this.#scan('marks', this.keys.reserved(`${INTERNAL.events}marks/`), async (objects) => {
      for (const o of objects) {
        if (now.getTime() - o.lastModified.getTime() < LEFTOVER_GRACE_MS) continue
        const found = await this.bucket.read(o.key)
        if (!found) continue
        const mark = JSON.parse(found.text) as Mark
        if ((await this.events.read(intentsOf(mark.owner), [mark.key])).length > 0) continue
        await this.bucket.delete(o.key, found.s3etag)
        removed++
      }
    })
    return removed
  }

  async #finishMoves(now: Date): Promise<number> {
    let finished = 0
    await this.#scan('moves', this.keys.reserved(INTERNAL.moves), async (objects) => {
      for (const o of objects) {
        if (now.getTime() - o.lastModified.getTime() < JOURNAL_STALE_MS) continue
        await this.moves.finish(o.key)
        finished++
      }
    })
    return finished
  }

  /** Upload folders: bytes no part record names, and folders without a record, once older than the grace. */
  async #uploadLeftovers(now: Date): Promise<number> {
    const prefix = this.keys.reserved(INTERNAL.uploads)
    const byUpload = new Map<string, ListedObject[]>()
    await this.#scan('uploads', prefix, async (objects) => {
      for (const o of objects) {
        const id = o.key.slice(prefix.length).split('/')[0]!
        byUpload.set(id, [...(byUpload.get(id) ?? []), o])
      }
    })
    let removed = 0
    const old = (o: ListedObject) => now.getTime() - o.lastModified.getTime() > LEFTOVER_GRACE_MS
    for (const [id, objects] of byUpload) {
      const folder = this.staging.records.folder(id)
      const hasRecord = objects.some((o) => o.key === this.staging.records.recordKey(id)) || (await this.bucket.head(this.staging.records.recordKey(id))) !== null
      let doomed: ListedObject[]
      if (!hasRecord) {
        doomed = objects.every(old) ? objects : []
      } else {
        const named = new Set((await this.staging.partRecords(id)).map((r) => r.bytes))
        doomed = objects.filter((o) => o.key.startsWith(`${folder}bytes/`) && !named.has(o.key) && old(o))
      }
      await this.bucket.deleteMany(doomed.map((o) => o.key))
      removed += doomed.length
    }
    return removed
  }

  /** Expiry entries of uploads whose record is gone (a creation cut short, a removal cut short). */
  async #expiryLeftovers(now: Date): Promise<number> {
    let removed = 0
    await this.#scan('expiry', this.keys.reserved(INTERNAL.expiry), async (objects) => {
      for (const o of objects) {
        if (now.getTime() - o.lastModified.getTime() < LEFTOVER_GRACE_MS) continue
        const id = o.key.slice(o.key.lastIndexOf('.') + 1)
        if ((await this.bucket.head(this.staging.records.recordKey(id))) === null) {
          await this.bucket.delete(o.key)
          removed++
        }
      }
    })
    return removed
  }

  /** Digests of versions at none of their paths any more. */
  async #digests(now: Date): Promise<number> {
    let removed = 0
    await this.#scan('digests', this.keys.reserved(INTERNAL.digests), async (objects) => {
      for (const o of objects) {
        if (now.getTime() - o.lastModified.getTime() < LEFTOVER_GRACE_MS) continue
        const found = await this.bucket.read(o.key)
        if (!found) continue
        const record = JSON.parse(found.text) as DigestRecord
        const heads = await Promise.all(record.paths.map((p) => this.bucket.head(this.keys.prefix + p)))
        if (heads.some((h) => h && decodeAttributes(h.meta).revision === record.revision)) continue
        await this.bucket.delete(o.key, found.s3etag)
        removed++
      }
    })
    return removed
  }

  /** Records of the sha256 of other tools' objects that have changed or gone since. */
  async #hashes(now: Date): Promise<number> {
    let removed = 0
    await this.#scan('hashes', this.keys.reserved(INTERNAL.hashes), async (objects) => {
      for (const o of objects) {
        if (now.getTime() - o.lastModified.getTime() < LEFTOVER_GRACE_MS) continue
        const found = await this.bucket.read(o.key)
        if (!found) continue
        const record = JSON.parse(found.text) as HashRecord
        const head = await this.bucket.head(record.key)
        if (head && head.s3etag === record.s3etag && head.lastModified.getTime() === Date.parse(record.lastModified)) continue
        await this.bucket.delete(o.key, found.s3etag)
        removed++
      }
    })
    return removed
  }

  /** Lists up to KEYS_PER_SWEEP keys under `prefix`, resuming after where this category stopped last time. */
  async #scan(category: string, prefix: string, visit: (objects: ListedObject[]) => Promise<void>): Promise<void> {
    const after = this.#resume.get(category)
    let seen = 0
    for await (const page of this.bucket.list(prefix, after !== undefined ? { startAfter: after } : {})) {
      await visit(page.objects)
      seen += page.objects.length
      const last = page.objects.at(-1)
      if (seen >= KEYS_PER_SWEEP && last) {
        this.#resume.set(category, last.key)
        return
      }
    }
    this.#resume.delete(category)
  }
}
