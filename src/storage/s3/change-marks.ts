/**
 * How the s3 store records a change with its event (docs/events.md). S3 has no commit to share with
 * another record and no lock across processes, so a change writes its intent just before the one
 * request that makes it visible (a conditional PutObject, CompleteMultipartUpload, copy or rename,
 * or a DeleteObject with `If-Match`), and confirms it once that request succeeded. Should the
 * process die in between, the intent is settled from what the bucket shows: whether the path holds
 * the version's revision (a write, a move: a copy keeps it), or no longer holds it (a delete).
 *
 * That reading is exact only while nothing else changed the path since. So each change also leaves
 * a **mark** named by the version it makes (or, for a delete, the version it takes away):
 * `events/marks/<revision>` naming its entry's key and owner, written before the intent and removed
 * after the confirm. The next change of that version, in any process, reads the mark of the version
 * it found (one GET, absent almost always) and, before it changes anything:
 *
 * - a write's or move's entry stands (that version is visible): it goes to `ready` at once, and the
 *   new change's key is made after it (the order per path);
 * - a delete's entry of a writer that is dead goes (the version is still there: that delete never
 *   happened); once the new change took the version (its conditional request won), the delete's
 *   entry goes whoever wrote it, as that delete can no longer happen.
 *
 * Marks of dead writers are reclaimed by the sweep once their entry is gone.
 */
import type { Change } from '../events/changes.js'
import type { EventRecorder, Intent } from '../events/recorder.js'
import { type ChangeOrigin, intentsOf, READY, type Witness } from '../events/types.js'
import { failpoint } from '../failpoints.js'
import type { Bucket, ObjectHead } from './bucket.js'
import type { S3EventLog } from './event-log.js'
import { INTERNAL, type S3Keys } from './keys.js'
import { decodeAttributes } from './object-attributes.js'

export interface Mark {
  owner: string
  key: string
  /** Where the change leaves the version: a move's target (at its source, the version is being taken away). */
  path: string
  /** The mark of a delete (of the version it names). */
  deleting?: boolean
}

/** What a change found of the version it is about to change (`ChangeMarks.before`). */
export interface Found {
  /** The key of the entry that announced that version: the new change's comes after it. */
  after?: string
  /** A delete that marked that version: its entry goes once this change took the version. */
  deleting?: Mark
}

/** A change announced: confirm once its request succeeded, cancel when it will not happen, abandon when unknown. */
export interface Announced {
  readonly intent: Intent
  confirm(): Promise<void>
  cancel(): Promise<void>
  abandon(): void
}

export class ChangeMarks {
  readonly #root: string

  constructor(
    private readonly bucket: Bucket,
    keys: S3Keys,
    private readonly events: EventRecorder,
    private readonly log: S3EventLog,
  ) {
    this.#root = keys.reserved(`${INTERNAL.events}marks/`)
  }

  get enabled(): boolean {
    return this.events.enabled
  }

  /** The name of the version `head` is (its revision; another tool's object, its S3 ETag). */
  static versionOf(head: ObjectHead): string {
    return decodeAttributes(head.meta).revision ?? `etag-${head.s3etag.replace(/"/g, '')}`
  }

  /** Settles what a dead or unfinished change left on the version `head` at `path` (see the top of this file), before a change of it. */
  async before(path: string, head: ObjectHead | null): Promise<Found> {
    if (!this.events.enabled || !head) return {}
    const found = await this.bucket.read(this.#markKey(ChangeMarks.versionOf(head)))
    if (!found) return {}
    const mark = JSON.parse(found.text) as Mark
    const me = await this.log.owner()
    if (mark.deleting) {
      if (mark.owner !== me && !(await this.log.alive(mark.owner))) await this.log.remove(intentsOf(mark.owner), mark.key)
      return { after: mark.key, deleting: mark }
    }
    // A move of this version elsewhere, under way or cut: its entry is settled by its target (or, the
    // copy not made, goes); this change only comes after it.
    if (mark.path !== path) return { after: mark.key }
    if (mark.owner !== me) await this.log.move(intentsOf(mark.owner), READY, mark.key)
    return { after: mark.key }
  }

  /** Once a change took the version `found` was read from: a delete that had marked it never happens. */
  async took(found: Found): Promise<void> {
    if (found.deleting) await this.log.remove(intentsOf(found.deleting.owner), found.deleting.key).catch(() => false)
  }

  /**
   * Writes the mark of the version `at` (where the change leaves it) and the intent of `change` (null when recording is off), just
   * before the request that makes it visible.
   */
  async intend(
    change: Change,
    witness: Witness,
    at: { version: string; path: string },
    options: { origin?: ChangeOrigin | undefined; after?: string | undefined; deleting?: boolean },
  ): Promise<Announced | null> {
    if (!this.events.enabled) return null
    this.events.checkRoom()
    const reserved = await this.events.reserve(options.after)
    const markKey = this.#markKey(at.version)
    const mark: Mark = { owner: reserved.owner, key: reserved.key, path: at.path, ...(options.deleting ? { deleting: true } : {}) }
    const markEtag = await this.bucket.put(markKey, JSON.stringify(mark), {}, { ContentType: 'application/json' })
    const intent = await this.events.intend(change, witness, { origin: options.origin, reserved })
    if (!intent) return null
    // Only this change's mark goes: a later change may have written its own meanwhile.
    const unmark = () => (markEtag !== null ? this.bucket.delete(markKey, markEtag).catch(() => false) : Promise.resolve(false))
    return {
      intent,
      confirm: async () => {
        failpoint('events.change.visible')
        await intent.confirm()
        await unmark()
      },
      cancel: async () => {
        await intent.cancel()
        await unmark()
      },
      abandon: () => intent.abandon(),
    }
  }

  /** The key of the mark of `version`. */
  #markKey(version: string): string {
    return `${this.#root}${version}`
  }

  /** Where marks live, for the sweep. */
  get prefix(): string {
    return this.#root
  }
}
