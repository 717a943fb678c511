/**
 * What lets an interrupted `put` or `get` go on where it stopped when run again, kept in a small
 * state folder (`--state-dir`, `FILESTORAGE_STATE_DIR`, else `$XDG_STATE_HOME/filestorage`, else
 * `~/.local/state/filestorage`):
 *
 * - `uploads.json`: the tus upload URL of each large file being sent, under a fingerprint of the
 *   local file and its target (tus-js-client's `FileUrlStorage`, which locks the file for writes,
 *   so several CLI processes can share it);
 * - `downloads.json`: the ETag the bytes of each partial download came from, under the partial
 *   file's path, in the same kind of store (an entry is a small JSON object, as an upload's is).
 */
import { mkdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { FileUrlStorage, type PreviousUpload, type UrlStorage } from 'tus-js-client'

declare module 'tus-js-client' {
  /** Exported by tus-js-client's Node build, missing from its typings. */
  export class FileUrlStorage implements UrlStorage {
    constructor(path: string)
    findAllUploads(): Promise<PreviousUpload[]>
    findUploadsByFingerprint(fingerprint: string): Promise<PreviousUpload[]>
    removeUpload(urlStorageKey: string): Promise<void>
    addUpload(fingerprint: string, upload: PreviousUpload): Promise<string>
  }
}

export function stateDir(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (option) return resolve(option)
  if (env.FILESTORAGE_STATE_DIR) return resolve(env.FILESTORAGE_STATE_DIR)
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'filestorage')
}

/**
 * One call at a time to a FileUrlStorage. It reads without its lock while a write rewrites the file
 * in place, and gives up on a lock held for more than a few tries: several transfers of one process
 * at once would read torn JSON, or fail on the lock. Processes apart rarely meet there.
 */
class SerialUrlStorage implements UrlStorage {
  #tail: Promise<unknown> = Promise.resolve()

  constructor(private readonly inner: UrlStorage) {}

  findAllUploads() {
    return this.#serial(() => this.inner.findAllUploads())
  }
  findUploadsByFingerprint(fingerprint: string) {
    return this.#serial(() => this.inner.findUploadsByFingerprint(fingerprint))
  }
  removeUpload(urlStorageKey: string) {
    return this.#serial(() => this.inner.removeUpload(urlStorageKey))
  }
  addUpload(fingerprint: string, upload: PreviousUpload) {
    return this.#serial(() => this.inner.addUpload(fingerprint, upload))
  }

  #serial<T>(call: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(call, call)
    this.#tail = result.catch(() => {})
    return result
  }
}

async function openStorage(dir: string, name: string): Promise<UrlStorage> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  return new SerialUrlStorage(new FileUrlStorage(join(dir, name)))
}

/** The tus upload URLs of unfinished `put`s. */
export function uploadStorage(dir: string): Promise<UrlStorage> {
  return openStorage(dir, 'uploads.json')
}

interface PartialEntry {
  etag: string
  creationTime: string
  urlStorageKey?: string
}

/** The ETag of each partial download, by the partial file's absolute path. */
export class PartialDownloads {
  readonly #storage: UrlStorage

  private constructor(storage: UrlStorage) {
    this.#storage = storage
  }

  static async open(dir: string): Promise<PartialDownloads> {
    return new PartialDownloads(await openStorage(dir, 'downloads.json'))
  }

  /** The ETag the partial file's bytes came from, if it is known. */
  async etagOf(partial: string): Promise<string | undefined> {
    const entries = (await this.#storage.findUploadsByFingerprint(key(partial))) as unknown as PartialEntry[]
    return entries.sort((a, b) => a.creationTime.localeCompare(b.creationTime)).at(-1)?.etag
  }

  async remember(partial: string, etag: string): Promise<void> {
    await this.forget(partial)
    const entry: PartialEntry = { etag, creationTime: new Date().toISOString() }
    await this.#storage.addUpload(key(partial), entry as unknown as Parameters<UrlStorage['addUpload']>[1])
  }

  async forget(partial: string): Promise<void> {
    for (const entry of await this.#storage.findUploadsByFingerprint(key(partial))) {
      await this.#storage.removeUpload(entry.urlStorageKey)
    }
  }
}

/** `findUploadsByFingerprint` matches by prefix: the key ends with a separator so `a` never finds `ab`. */
const key = (partial: string) => `partial:${partial}::`
