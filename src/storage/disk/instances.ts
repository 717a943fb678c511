/**
 * The processes that use one store folder, so that what a dead one left behind can be told from
 * what a live one is still working on: its temporary files, its locks, the parts it was appending.
 *
 * Each driver registers itself as `.filestorage/instances/<id>.json` with what identifies its
 * process. Another process decides whether it is alive:
 *
 * - on the same machine and in the same PID namespace (a second service, a worker of the same
 *   service, a restart): exactly, from /proc/<pid>/stat and the process's start time, so a
 *   `kill -9` is known at once and a reused pid is never mistaken for the dead process;
 * - anywhere else (another container or host sharing the folder): by a heartbeat, the file's mtime,
 *   which a live process refreshes every HEARTBEAT_MS; silent for STALE_MS means dead.
 *
 * What a dead instance owned is reclaimed once, by whichever process first renames its record to
 * `<id>.reaping.<reaper>` (a rename succeeds for one caller only); a reaper that dies in turn is
 * replaced the same way.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, readlinkSync } from 'node:fs'
import { readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { isErrno } from './layout.js'

interface InstanceRecord {
  v: 1
  id: string
  pid: number
  /** Same machine, same boot, same PID namespace: then pid + startTicks identify the process. */
  machine: string
  startTicks: string | null
}

export const HEARTBEAT_MS = 5_000
export const STALE_MS = 30_000

/** This process as the kernel sees it: boot, host and PID namespace, and its start time. */
function machineOfThisProcess(): string {
  const read = (f: () => string) => {
    try {
      return f().trim()
    } catch {
      return '?'
    }
  }
  const boot = read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'))
  const pidNs = read(() => readlinkSync('/proc/self/ns/pid'))
  return `${hostname()}|${boot}|${pidNs}`
}

/**
 * The start time of a running process in clock ticks since boot (field 22 of /proc/<pid>/stat), or
 * null when there is no such process or it has exited (a zombie not yet reaped by its parent).
 */
function startTicksOf(pid: number | 'self'): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    if (fields[0] === 'Z' || fields[0] === 'X') return null
    return fields[19] ?? null
  } catch {
    return null
  }
}

const MACHINE = machineOfThisProcess()

export class Instances {
  readonly id: string
  #heartbeat: NodeJS.Timeout | undefined

  private constructor(private readonly dir: string) {
    this.id = `${process.pid.toString(36)}-${randomBytes(6).toString('hex')}`
  }

  /** Registers this process in `dir` and keeps its heartbeat going until `close`. */
  static async register(dir: string): Promise<Instances> {
    const instances = new Instances(dir)
    const record: InstanceRecord = {
      v: 1,
      id: instances.id,
      pid: process.pid,
      machine: MACHINE,
      startTicks: startTicksOf('self'),
    }
    // Written whole, then renamed: a reader never sees half a record (and takes it for a dead one).
    const draft = join(dir, `.${instances.id}.new`)
    await writeFile(draft, JSON.stringify(record))
    await rename(draft, instances.#file(instances.id))
    instances.#heartbeat = setInterval(() => void instances.#beat(), HEARTBEAT_MS).unref()
    return instances
  }

  /** True while the instance `id` may still be working: registered and not known to be dead. */
  async isAlive(id: string): Promise<boolean> {
    if (id === this.id) return true
    let record: InstanceRecord
    let mtimeMs: number
    try {
      const [text, stats] = await Promise.all([readFile(this.#file(id), 'utf8'), stat(this.#file(id))])
      record = JSON.parse(text) as InstanceRecord
      mtimeMs = stats.mtimeMs
    } catch (e) {
      // Unregistered (closed cleanly, or reaped): nothing of it is live any more.
      if (isErrno(e, 'ENOENT') || e instanceof SyntaxError) return false
      throw e
    }
    if (record.machine === MACHINE && record.machine.indexOf('?') < 0 && record.startTicks !== null) {
      return startTicksOf(record.pid) === record.startTicks
    }
    return Date.now() - mtimeMs < STALE_MS
  }

  /** The registered instances other than this one that are dead, and reapers that died reaping. */
  async dead(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[])
    const dead: string[] = []
    for (const name of names) {
      if (name.endsWith('.json')) {
        const id = name.slice(0, -'.json'.length)
        if (!(await this.isAlive(id))) dead.push(id)
      } else {
        const m = /^(.+)\.reaping\.(.+)$/.exec(name)
        if (m && m[2] !== this.id && !(await this.isAlive(m[2]!))) dead.push(m[1]!)
      }
    }
    return [...new Set(dead)]
  }

  /**
   * Runs `reclaim` for the dead instance `id` if this process wins the right to (renaming its
   * record); the record goes once `reclaim` has finished. False when another process reaps it.
   * `reclaim` gets the record's new name: its inode is the one the dead instance's locks link to.
   */
  async reap(id: string, reclaim: (id: string, record: string) => Promise<void>): Promise<boolean> {
    const mine = join(this.dir, `${id}.reaping.${this.id}`)
    const candidates = [this.#file(id), ...(await this.#reapersOf(id))]
    for (const candidate of candidates) {
      try {
        await rename(candidate, mine)
        await reclaim(id, mine)
        await rm(mine, { force: true })
        return true
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e
      }
    }
    return false
  }

  /** This instance's record: what its locks link to. */
  get record(): string {
    return this.#file(this.id)
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat)
    await rm(this.#file(this.id), { force: true })
  }

  /** Records of reapers of `id` that died reaping. */
  async #reapersOf(id: string): Promise<string[]> {
    const prefix = `${id}.reaping.`
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n.startsWith(prefix))
    const dead: string[] = []
    for (const name of names) if (!(await this.isAlive(name.slice(prefix.length)))) dead.push(join(this.dir, name))
    return dead
  }

  async #beat(): Promise<void> {
    const now = new Date()
    await utimes(this.#file(this.id), now, now).catch(() => {})
  }

  #file(id: string): string {
    return join(this.dir, `${id}.json`)
  }
}
