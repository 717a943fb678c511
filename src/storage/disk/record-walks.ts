/**
 * When the sweeper walks every record (FileRecords.sweep: an lstat per file in the store, about
 * 40 µs each here, so 40 s per million files).
 *
 * A record whose file lost its name is released by whoever took the name away (a replace, a move
 * onto it, a delete, the end of a download's hold on a version); only a crash leaves one behind, or
 * a file deleted by hand. So the walk is made when a dead process was reaped since the last walk
 * (whichever process reaps it asks for one), and otherwise at most once per `intervalMs`: a store
 * of millions of files does not pay a whole walk at every sweep.
 *
 * Kept for the whole store, in the mtime of one file: when the last walk started, 0 when a walk is
 * asked for (as it is when the file is made). A request always comes after what it asks to reclaim
 * is there to be found (the reaper has removed the dead process's files), so any walk that starts
 * after it finds it, even one whose claim overwrote the request.
 */
import { utimes, writeFile } from 'node:fs/promises'
import { stat } from './fs-calls.js'
import { isErrno } from './layout.js'

export const RECORD_WALK_INTERVAL_MS = 24 * 60 * 60 * 1000

export class RecordWalks {
  private constructor(
    private readonly file: string,
    private readonly intervalMs: number,
  ) {}

  /** The store's walks; a store that has made none yet gets its file (a walk due) at once. */
  static async open(file: string, intervalMs = RECORD_WALK_INTERVAL_MS): Promise<RecordWalks> {
    const walks = new RecordWalks(file, intervalMs)
    try {
      await writeFile(file, '', { flag: 'wx' })
      await walks.request()
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e
    }
    return walks
  }

  /** Asks for a walk at the next sweep of any process on the store. */
  async request(): Promise<void> {
    await this.#mark(new Date(0))
  }

  /** Whether a walk is due; if so, it is claimed (its start recorded) for the caller to make. */
  async claim(): Promise<boolean> {
    const now = new Date() // the clock, not a sweep's `now` (which tests move to expire uploads)
    const last = await stat(this.file).catch((e: unknown) => {
      if (isErrno(e, 'ENOENT')) return null // removed by hand: as if never walked
      throw e
    })
    if (last && last.mtimeMs > 0 && now.getTime() - last.mtimeMs < this.intervalMs) return false
    await this.#mark(now)
    return true
  }

  /** Sets the file's mtime, making the file again if it was removed. */
  async #mark(time: Date): Promise<void> {
    try {
      await utimes(this.file, time, time)
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw e
      await writeFile(this.file, '', { flag: 'a' })
      await utimes(this.file, time, time)
    }
  }
}
