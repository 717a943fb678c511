/**
 * What this process learned of the bucket lately, so that a write asks S3 less (each request costs
 * about a millisecond of the SDK's CPU, more than the bytes of a small file):
 *
 * - `versions`: the version a key held when this process last wrote or looked at it (its S3 ETag and
 *   metadata). An unconditional write replaces it with `If-Match` on that ETag without a HEAD first:
 *   if the key changed meanwhile, S3 answers 412 and the write looks again (versions.ts), so a stale
 *   entry costs a request, never a wrong answer. Never used for a client's own conditions.
 * - absences: "no file at this ancestor" and "no folder at this path", as S3 said within the last
 *   two seconds. S3 lets a file and a folder share a name, so these checks of SPEC's path rules are
 *   made before a write, never atomically with it, on every S3 store; remembering them briefly widens
 *   that window by two seconds for other processes only: this process forgets an absence as soon as
 *   it writes there itself.
 */
import { LRUCache } from 'lru-cache'
import { ancestorsOf } from '../paths.js'
import type { ObjectHead } from './bucket.js'

/** How long an absence S3 reported is believed. */
const ABSENCE_MS = 2_000

export class Recent {
  readonly #versions = new LRUCache<string, ObjectHead>({ max: 10_000 })
  readonly #absent = new LRUCache<string, number>({ max: 10_000 })

  constructor(private readonly prefix: string) {}

  version(key: string): ObjectHead | undefined {
    return this.#versions.get(key)
  }

  /** `head` is what `key` holds now (null: nothing), as this process just wrote or saw it. */
  saw(key: string, head: ObjectHead | null): void {
    if (head) this.#versions.set(key, head)
    else this.#versions.delete(key)
  }

  /** Forgets every version under `prefix` (a folder moved or deleted). */
  forgetUnder(prefix: string): void {
    for (const key of this.#versions.keys()) if (key.startsWith(prefix)) this.#versions.delete(key)
  }

  /** S3 said, just now, that there is nothing at `what` (`file:<key>` or `folder:<prefix>`). */
  absent(what: string): void {
    this.#absent.set(what, Date.now() + ABSENCE_MS)
  }

  isAbsent(what: string): boolean {
    return (this.#absent.get(what) ?? 0) > Date.now()
  }

  /** This process wrote a file at `path`: it is a file now, and each folder above it exists. */
  wrote(path: string): void {
    this.#absent.delete(`file:${this.prefix}${path}`)
    this.#foldersExist(ancestorsOf(path))
  }

  /** This process moved a folder to `path`: it exists, and so does each folder above it. */
  movedFolder(path: string): void {
    this.#foldersExist([...ancestorsOf(path), path])
  }

  #foldersExist(folders: string[]): void {
    for (const folder of folders) this.#absent.delete(`folder:${this.prefix}${folder}/`)
  }
}
