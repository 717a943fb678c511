/**
 * A `Store` (what handlers use) made of a driver (its file operations, driver.ts) and the upload
 * engine running on the driver's staging primitive (uploads/engine.ts).
 */
import type { StorageDriver } from './driver.js'
import type { EventRecorder } from './events/recorder.js'
import { defaultUploadPolicy, type UploadPolicy } from './uploads/rules.js'
import { UploadEngine } from './uploads/engine.js'
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
} from './types.js'

/** The store of `driver`, its uploads run by the engine under `policy` (defaults: `defaultUploadPolicy`). */
export function withUploads<D extends StorageDriver>(driver: D, policy: Partial<UploadPolicy> = {}): DriverStore<D> {
  return new DriverStore(driver, { ...defaultUploadPolicy, ...policy })
}

export class DriverStore<D extends StorageDriver = StorageDriver> implements Store {
  readonly kind: string
  readonly localVersion?: (file: StoredFile) => Promise<string | undefined>
  readonly events?: EventRecorder
  readonly redirectUrl?: (file: StoredFile, response: RedirectResponse) => Promise<string | undefined>
  readonly #engine: UploadEngine

  constructor(
    /** The driver, for what only it offers (the disk store's instance id, say). */
    readonly driver: D,
    policy: UploadPolicy,
  ) {
    this.kind = driver.kind
    this.#engine = new UploadEngine(driver, policy)
    if (driver.localVersion) this.localVersion = (file) => driver.localVersion!(file)
    if (driver.events) this.events = driver.events
    if (driver.redirectUrl) this.redirectUrl = (file, response) => driver.redirectUrl!(file, response)
  }

  put(path: string, body: ReadableStream<Uint8Array>, options?: PutOptions): Promise<PutResult> {
    return this.driver.put(path, body, options)
  }

  read(path: string, range?: ByteRange): Promise<ReadResult> {
    return this.driver.read(path, range)
  }

  stat(path: string): Promise<StoredFile> {
    return this.driver.stat(path)
  }

  lookup(path: string): Promise<StoredEntry | null> {
    return this.driver.lookup(path)
  }

  list(dir: string, options?: ListOptions): Promise<ListPage> {
    return this.driver.list(dir, options)
  }

  move(from: string, to: string, options?: MoveOptions): Promise<StoredEntry> {
    return this.driver.move(from, to, options)
  }

  delete(path: string, options?: DeleteOptions): Promise<void> {
    return this.driver.delete(path, options)
  }

  health(): Promise<HealthReport> {
    return this.driver.health()
  }

  close(): Promise<void> {
    return this.driver.close()
  }

  createUpload(path: string, options?: CreateUploadOptions): Promise<UploadSession> {
    return this.#run(path, () => this.#engine.create(path, options))
  }

  putPart(uploadId: string, part: number, body: ReadableStream<Uint8Array>, options?: PutPartOptions): Promise<PartInfo> {
    return this.#run(uploadId, () => this.#engine.putPart(uploadId, part, body, options))
  }

  appendPart(uploadId: string, body: ReadableStream<Uint8Array>, options: AppendPartOptions): Promise<AppendResult> {
    return this.#run(uploadId, () => this.#engine.append(uploadId, body, options))
  }

  declareUploadSize(uploadId: string, totalSize: number): Promise<UploadStatus> {
    return this.#run(uploadId, () => this.#engine.declareSize(uploadId, totalSize))
  }

  uploadStatus(uploadId: string, options?: UploadStatusOptions): Promise<UploadStatus> {
    return this.#run(uploadId, () => this.#engine.status(uploadId, options))
  }

  completeUpload(uploadId: string, options?: CompleteUploadOptions): Promise<PutResult> {
    return this.#run(uploadId, () => this.#engine.complete(uploadId, options))
  }

  abortUpload(uploadId: string, options?: AbortUploadOptions): Promise<void> {
    return this.#run(uploadId, () => this.#engine.abort(uploadId, options))
  }

  async sweep(now = new Date()): Promise<{ removed: number }> {
    return { removed: await this.#run('the sweep', () => this.#engine.sweep(now)) }
  }

  #run<T>(subject: string, operation: () => Promise<T>): Promise<T> {
    return this.driver.run ? this.driver.run(subject, operation) : operation()
  }
}
