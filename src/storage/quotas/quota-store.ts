/**
 * A store under quotas: wraps any `Store` and registers each change in the ledger's buckets
 * (ledger.ts) before it reads a byte, so that one that would go over a limit is refused with
 * `quota_exceeded` first:
 *
 * - an upload reserves its announced size, or grows its reservation as its bytes arrive (meter.ts)
 *   and is cut, leaving nothing, when the quota has no more room; a file it replaces is credited;
 * - an upload in parts or tus upload reserves its declared size at creation (or when declared
 *   later) for as long as it lives; without one, each part or append reserves its bytes as they come;
 * - a move into a prefix (or a rename across buckets) reserves what it brings; a move between
 *   stores is an upload into the target and a delete from the source (storage/transfer.ts);
 * - a delete, and a move out, give their bytes back when they end.
 *
 * Reads pass through untouched.
 */
import { StorageError } from '../errors.js'
import { filesUnder } from '../files-under.js'
import { isWithin } from '../paths.js'
import type { EventRecorder } from '../events/recorder.js'
import type {
  AbortUploadOptions,
  AppendPartOptions,
  AppendResult,
  ByteRange,
  CompleteUploadOptions,
  CreateUploadOptions,
  DeleteOptions,
  HealthReport,
  ListOptions,
  ListPage,
  MoveOptions,
  PartInfo,
  PutOptions,
  PutPartOptions,
  PutResult,
  ReadResult,
  RedirectResponse,
  Store,
  StoredEntry,
  StoredFile,
  UploadSession,
  UploadStatus,
  UploadStatusOptions,
} from '../types.js'
import { type Amount, type BucketState, NOTHING, usageOf } from './bucket.js'
import { type Change, type QuotaLedger, quotaExceeded, type QuotaUsage } from './ledger.js'
import { meteredBody } from './meter.js'
import type { Bucket } from './rules.js'

/** A file found at a path as the quota counts it: its bytes and one file; nothing for a folder or no file. */
const amountOf = (entry: StoredEntry | null): Amount => (entry?.type === 'file' ? { bytes: entry.size, files: 1 } : { ...NOTHING })
const sameAmount = (a: Amount, b: Amount) => a.bytes === b.bytes && a.files === b.files
const plus = (a: Amount, b: Amount): Amount => ({ bytes: a.bytes + b.bytes, files: a.files + b.files })

/**
 * Failures after which the change may have happened anyway (the store stopped answering during its
 * commit): the change is then ended as if it had added all it reserved, and its buckets recounted.
 */
const mayHaveHappened = (e: unknown) => !(e instanceof StorageError) || e.code === 'store_unavailable'

export class QuotaStore implements Store {
  readonly kind: string
  readonly localVersion?: (file: StoredFile) => Promise<string | undefined>
  readonly events?: EventRecorder
  readonly redirectUrl?: (file: StoredFile, response: RedirectResponse) => Promise<string | undefined>

  constructor(
    readonly inner: Store,
    readonly ledger: QuotaLedger,
  ) {
    this.kind = inner.kind
    if (inner.localVersion) this.localVersion = (file) => inner.localVersion!(file)
    if (inner.events) this.events = inner.events
    if (inner.redirectUrl) this.redirectUrl = (file, response) => inner.redirectUrl!(file, response)
  }

  read(path: string, range?: ByteRange): Promise<ReadResult> {
    return this.inner.read(path, range)
  }

  stat(path: string): Promise<StoredFile> {
    return this.inner.stat(path)
  }

  lookup(path: string): Promise<StoredEntry | null> {
    return this.inner.lookup(path)
  }

  list(dir: string, options?: ListOptions): Promise<ListPage> {
    return this.inner.list(dir, options)
  }

  health(): Promise<HealthReport> {
    return this.inner.health()
  }

  uploadStatus(uploadId: string, options?: UploadStatusOptions): Promise<UploadStatus> {
    return this.inner.uploadStatus(uploadId, options)
  }

  quotaUsage(path: string): Promise<QuotaUsage[]> {
    return this.ledger.usage(path)
  }

  async checkRoom(files: AsyncIterable<{ path: string; size: number }>): Promise<void> {
    const needs = new Map<string, { bucket: Bucket; need: Amount }>()
    for await (const file of files) {
      for (const bucket of this.ledger.covering(file.path)) {
        const entry = needs.get(bucket.prefix) ?? { bucket, need: { ...NOTHING } }
        entry.need = plus(entry.need, { bytes: file.size, files: 1 })
        needs.set(bucket.prefix, entry)
      }
    }
    await this.ledger.counted([...needs.values()].map((n) => n.bucket))
    for (const { bucket, need } of needs.values()) {
      const state = await this.ledger.records.read<BucketState>(`b/${bucket.prefix}`)
      const { usage } = usageOf(state ?? { counted: true, stored: { ...NOTHING }, entries: {} })
      const { bytes, files } = bucket.limits
      if ((bytes !== undefined && usage.bytes + need.bytes > bytes) || (files !== undefined && usage.files + need.files > files)) {
        throw quotaExceeded(this.ledger.store, bucket, { limit: bucket.limits, usage, requested: need })
      }
    }
  }

  async put(path: string, body: ReadableStream<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const buckets = this.ledger.covering(path)
    if (buckets.length === 0) return this.inner.put(path, body, options)
    const change = await this.ledger.processChange()
    const announced = options.expectedSize ?? 0
    let metered: ReturnType<typeof meteredBody> | undefined
    try {
      await this.#registerWrite(change, buckets, path, { bytes: announced, files: 1 })
      metered = meteredBody(body, change, { granted: announced })
      const result = await this.inner.put(path, metered.body, options)
      await change.end(() => ({ bytes: result.file.size, files: 1 }), (credit) => result.created === (credit.files === 0))
      return result
    } catch (e) {
      const refusal = metered?.refusal()
      if (!refusal && metered && mayHaveHappened(e)) await change.end(() => ({ bytes: metered!.granted(), files: 1 }), false).catch(() => {})
      else await change.drop().catch(() => {})
      throw refusal ?? e
    }
  }

  async move(from: string, to: string, options: MoveOptions = {}): Promise<StoredEntry> {
    const known = uniqueBuckets([
      ...this.ledger.covering(from),
      ...(await this.ledger.bucketsUnder(from)),
      ...this.ledger.covering(to),
      ...(options.overwrite ? await this.ledger.bucketsUnder(to) : []),
    ])
    if (known.length === 0 && !this.ledger.rules.mayHaveBucketsUnder(to)) return this.inner.move(from, to, options)
    const change = await this.ledger.processChange()
    const scopes = [from, to]
    let folder = false
    try {
      for (const bucket of known) await change.register(bucket, scopes)
      // Measured once registered: whatever touches these paths from now on is seen (bucket.ts).
      const source = await this.inner.lookup(from)
      folder = source?.type === 'directory'
      const adds = new Map<string, Amount>()
      const removes = new Map<string, Amount>()
      const count = (into: Map<string, Amount>, path: string, size: number) => {
        for (const bucket of this.ledger.covering(path)) into.set(bucket.prefix, plus(into.get(bucket.prefix) ?? { ...NOTHING }, { bytes: size, files: 1 }))
      }
      for await (const file of this.#files(source)) {
        count(removes, file.path, file.size)
        count(adds, to + file.path.slice(from.length), file.size)
      }
      if (options.overwrite && from !== to) for await (const file of this.#files(await this.inner.lookup(to))) count(removes, file.path, file.size)
      for (const prefix of adds.keys()) {
        if (!change.has(prefix)) await change.register(this.ledger.rules.bucket(prefix)!, scopes)
      }
      for (const bucket of change.buckets) {
        await change.set(bucket.prefix, { reserved: adds.get(bucket.prefix) ?? { ...NOTHING }, credit: removes.get(bucket.prefix) ?? { ...NOTHING } })
      }
      const result = await this.inner.move(from, to, options)
      await change.end((prefix) => adds.get(prefix) ?? { ...NOTHING })
      return result
    } catch (e) {
      // A folder's move may stop part-way (on MongoDB, file by file): recount what it touched.
      await change.drop(folder).catch(() => {})
      throw e
    }
  }

  async delete(path: string, options: DeleteOptions = {}): Promise<void> {
    const buckets = uniqueBuckets([...this.ledger.covering(path), ...(await this.ledger.bucketsUnder(path))])
    if (buckets.length === 0) return this.inner.delete(path, options)
    const change = await this.ledger.processChange()
    let folder = false
    try {
      for (const bucket of buckets) await change.register(bucket, [path])
      const entry = await this.inner.lookup(path)
      folder = entry?.type === 'directory'
      const credits = new Map<string, Amount>(buckets.map((b) => [b.prefix, { ...NOTHING }]))
      // A folder deleted without `recursive` can only be an empty one.
      if (!folder || options.recursive) {
        for await (const file of this.#files(entry)) {
          for (const bucket of buckets) if (isWithin(file.path, bucket.prefix)) credits.set(bucket.prefix, plus(credits.get(bucket.prefix)!, { bytes: file.size, files: 1 }))
        }
      }
      for (const [prefix, credit] of credits) await change.set(prefix, { credit })
      await this.inner.delete(path, options)
      await change.end(() => ({ ...NOTHING }))
    } catch (e) {
      await change.drop(folder).catch(() => {})
      throw e
    }
  }

  async close(): Promise<void> {
    await this.ledger.close()
    await this.inner.close()
  }

  async createUpload(path: string, options: CreateUploadOptions = {}): Promise<UploadSession> {
    const buckets = this.ledger.covering(path)
    if (buckets.length === 0) return this.inner.createUpload(path, options)
    // Reserved by the request before the upload exists, so that a refused one is never created (nor
    // announced); the upload then takes the reservation over. A crash in between leaves the request's
    // entries to be reaped, and the upload's are registered again by its first part (#upload).
    const request = await this.ledger.processChange()
    let session: UploadSession | undefined
    try {
      await this.#registerWrite(request, buckets, path, { bytes: options.totalSize ?? 0, files: 1 }, options.totalSize !== undefined)
      session = await this.inner.createUpload(path, options)
      await this.ledger.indexUpload(session.uploadId, buckets.map((b) => b.prefix), session.expiresAt)
      await request.handOver(this.ledger.uploadChange(session.uploadId))
      return session
    } catch (e) {
      if (session) await this.abortUpload(session.uploadId).catch(() => {})
      await request.drop().catch(() => {})
      throw e
    }
  }

  async putPart(uploadId: string, part: number, body: ReadableStream<Uint8Array>, options: PutPartOptions = {}): Promise<PartInfo> {
    const upload = await this.#upload(uploadId)
    if (!upload || upload.declared) return this.inner.putPart(uploadId, part, body, options)
    const metered = meteredBody(body, upload.change, options.expectedSize !== undefined ? { announced: options.expectedSize } : {})
    try {
      const info = await this.inner.putPart(uploadId, part, metered.body, options)
      await upload.change.shrink(metered.granted() - info.size)
      return info
    } catch (e) {
      await upload.change.shrink(metered.granted()).catch(() => {})
      throw metered.refusal() ?? e
    }
  }

  async appendPart(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult> {
    const upload = await this.#upload(uploadId)
    if (!upload || upload.declared) return this.inner.appendPart(uploadId, body, options)
    const metered = meteredBody(body, upload.change, options.expectedSize !== undefined ? { announced: options.expectedSize } : {})
    let result: AppendResult
    try {
      result = await this.inner.appendPart(uploadId, metered.body, options)
    } catch (e) {
      await upload.change.shrink(metered.granted()).catch(() => {})
      throw metered.refusal() ?? e
    }
    await upload.change.shrink(metered.granted() - (result.offset - options.offset))
    // Cut at the limit: what arrived before is kept (a tus append keeps a cut body), the rest refused.
    const refusal = metered.refusal()
    if (refusal) throw refusal
    return result
  }

  async declareUploadSize(uploadId: string, totalSize: number): Promise<UploadStatus> {
    const upload = await this.#upload(uploadId)
    if (!upload || upload.declared) return this.inner.declareUploadSize(uploadId, totalSize)
    const before = new Map<string, Amount>()
    for (const bucket of upload.change.buckets) before.set(bucket.prefix, (await upload.change.entry(bucket.prefix))?.reserved ?? { bytes: 0, files: 1 })
    try {
      for (const bucket of upload.change.buckets) await upload.change.set(bucket.prefix, { reserved: { bytes: totalSize, files: 1 }, declared: true })
      return await this.inner.declareUploadSize(uploadId, totalSize)
    } catch (e) {
      for (const [prefix, reserved] of before) await upload.change.set(prefix, { reserved }).catch(() => {})
      throw e
    }
  }

  async completeUpload(uploadId: string, options?: CompleteUploadOptions): Promise<PutResult> {
    const upload = await this.#upload(uploadId, { finished: true, keep: true })
    if (!upload) return this.inner.completeUpload(uploadId, options)
    await this.ledger.uploadEnding(uploadId)
    const result = await this.inner.completeUpload(uploadId, options)
    // A completion sent again finds its entries ended already: nothing to count twice.
    await upload.change.end(() => ({ bytes: result.file.size, files: 1 }), (credit) => result.created === (credit.files === 0))
    await this.ledger.unindexUpload(uploadId)
    return result
  }

  async abortUpload(uploadId: string, options?: AbortUploadOptions): Promise<void> {
    const upload = await this.#upload(uploadId, { keep: true })
    if (!upload) return this.inner.abortUpload(uploadId, options)
    await this.ledger.uploadEnding(uploadId)
    await this.inner.abortUpload(uploadId, options)
    await upload.change.drop()
    await this.ledger.unindexUpload(uploadId)
  }

  async sweep(now?: Date): Promise<{ removed: number }> {
    const swept = await this.inner.sweep(now)
    await this.ledger.round()
    return swept
  }

  /**
   * Registers a file write at `path` in `buckets`: what it may add, and the file it replaces as its
   * credit, looked at again once registered (a change made between the two looks is then known).
   */
  async #registerWrite(change: Change, buckets: Bucket[], path: string, reserved: Amount, declared = false): Promise<void> {
    const before = amountOf(await this.inner.lookup(path))
    for (const bucket of buckets) await change.register(bucket, [path], { reserved, credit: before, declared })
    const after = amountOf(await this.inner.lookup(path))
    if (!sameAmount(before, after)) for (const bucket of buckets) await change.set(bucket.prefix, { credit: after })
  }

  /**
   * The quota side of an upload in parts: its change, registered in every bucket of its path (again
   * where its entry is missing: an upload begun before quotas were set, or a crash between its
   * creation and its reservation), and whether its size is declared. Undefined when no quota covers
   * it. `keep`: only the entries that exist (completing or aborting must not reserve anew).
   */
  async #upload(
    uploadId: string,
    options: { finished?: boolean; keep?: boolean } = {},
  ): Promise<{ change: Change; declared: boolean } | undefined> {
    const status = await this.inner.uploadStatus(uploadId, options.finished ? { finished: true } : {})
    const buckets = this.ledger.covering(status.path)
    if (buckets.length === 0) return undefined
    const change = this.ledger.uploadChange(uploadId)
    let declared = true
    const missing: Bucket[] = []
    for (const bucket of buckets) {
      const entry = await change.entry(bucket.prefix)
      if (entry) {
        change.adopt([bucket])
        declared &&= entry.declared
      } else {
        missing.push(bucket)
      }
    }
    if (options.keep) return { change, declared }
    if (missing.length > 0) {
      await this.ledger.indexUpload(uploadId, missing.map((b) => b.prefix), status.expiresAt)
      const reserved = { bytes: status.totalSize ?? status.received, files: 1 }
      await this.#registerWrite(change, missing, status.path, reserved, status.totalSize !== undefined)
      declared &&= status.totalSize !== undefined
    }
    return { change, declared }
  }

  /** The files a lookup found: itself, or every file under a folder, a page at a time. */
  async *#files(entry: StoredEntry | null): AsyncGenerator<{ path: string; size: number }> {
    if (entry?.type === 'file') yield { path: entry.path, size: entry.size }
    if (entry?.type === 'directory') yield* filesUnder(this.inner, entry.path)
  }
}

function uniqueBuckets(buckets: Bucket[]): Bucket[] {
  return [...new Map(buckets.map((b) => [b.prefix, b])).values()]
}
