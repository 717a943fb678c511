/**
 * The records of uploads on the MongoDB store (driver.ts `UploadRecords`): one document per upload
 * in `uploads`, replaced whole by compare-and-set on its `version`. (On FerretDB v1 a conditional
 * replace is not atomic under concurrency; the engine's checks after each write cover that, as for
 * the parts, see staging.ts.)
 */
import type { Collection } from 'mongodb'
import type { UploadRecords, UploadState, VersionedState } from '../driver.js'
import type { PutResult, StoredFile } from '../types.js'
import type { UploadDoc } from './schema.js'

export class MongoUploadRecords implements UploadRecords {
  constructor(private readonly uploads: Collection<UploadDoc>) {}

  async create(state: UploadState): Promise<void> {
    await this.uploads.insertOne(toDoc(state, 1))
  }

  async read(uploadId: string): Promise<VersionedState | null> {
    const doc = await this.uploads.findOne({ _id: uploadId })
    return doc && { state: fromDoc(doc), version: String(doc.version ?? 0) }
  }

  async update(uploadId: string, version: string, next: UploadState): Promise<boolean> {
    const v = Number(version)
    // Records of earlier versions have no `version`: they count as 0.
    const { matchedCount } = await this.uploads.replaceOne({ _id: uploadId, version: v === 0 ? { $exists: false } : v }, toDoc(next, v + 1))
    return matchedCount === 1
  }

  async remove(uploadId: string): Promise<void> {
    await this.uploads.deleteOne({ _id: uploadId })
  }

  async expired(now: Date, limit: number): Promise<string[]> {
    const docs = await this.uploads.find({ expiresAt: { $lte: now } }, { projection: { _id: 1 } }).limit(limit).toArray()
    return docs.map((d) => d._id)
  }
}

function toDoc(state: UploadState, version: number): UploadDoc {
  const { finished, journal, completing } = state
  return {
    _id: state.uploadId,
    version,
    path: state.path,
    partSizeLimit: state.partSizeLimit,
    createdAt: new Date(state.createdAt),
    expiresAt: new Date(state.expiresAt),
    metadataJson: JSON.stringify(state.metadata),
    ...(state.contentType !== undefined ? { contentType: state.contentType } : {}),
    ...(state.mustNotExist ? { mustNotExist: true } : {}),
    ...(state.ifMatch ? { ifMatch: state.ifMatch } : {}),
    ...(state.maxBytes !== undefined ? { maxBytes: state.maxBytes } : {}),
    ...(state.totalSize !== undefined ? { totalSize: state.totalSize } : {}),
    ...(state.attributes !== undefined ? { attributesJson: JSON.stringify(state.attributes) } : {}),
    ...(state.owner !== undefined ? { owner: state.owner } : {}),
    ...(completing ? { completingUntil: new Date(completing.until), completingBy: completing.by } : {}),
    ...(journal ? { journalJson: JSON.stringify(journal) } : {}),
    ...(finished ? { finished: true } : {}),
    ...(finished && 'revision' in finished
      ? { result: { rev: finished.revision, fileJson: JSON.stringify(finished.result.file), created: finished.result.created } }
      : {}),
  }
}

function fromDoc(doc: UploadDoc): UploadState {
  const result: PutResult | undefined = doc.result && { file: JSON.parse(doc.result.fileJson) as StoredFile, created: doc.result.created }
  return {
    uploadId: doc._id,
    path: doc.path,
    partSizeLimit: doc.partSizeLimit,
    createdAt: doc.createdAt.toISOString(),
    expiresAt: doc.expiresAt.toISOString(),
    metadata: JSON.parse(doc.metadataJson) as Record<string, unknown>,
    ...(doc.contentType !== undefined ? { contentType: doc.contentType } : {}),
    ...(doc.mustNotExist ? { mustNotExist: true } : {}),
    ...(doc.ifMatch ? { ifMatch: doc.ifMatch } : {}),
    ...(doc.maxBytes !== undefined ? { maxBytes: doc.maxBytes } : {}),
    ...(doc.totalSize !== undefined ? { totalSize: doc.totalSize } : {}),
    ...(doc.attributesJson !== undefined ? { attributes: JSON.parse(doc.attributesJson) as Record<string, string> } : {}),
    ...(doc.owner !== undefined ? { owner: doc.owner } : {}),
    ...(doc.completingUntil ? { completing: { until: doc.completingUntil.toISOString(), by: doc.completingBy ?? '' } } : {}),
    ...(doc.journalJson !== undefined ? { journal: JSON.parse(doc.journalJson) as UploadState['journal'] } : {}),
    ...(doc.finished ? { finished: result ? { revision: String(doc.result!.rev), result } : { aborted: true as const } } : {}),
  }
}
