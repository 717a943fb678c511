/**
 * Events in the storage core: what a change announces (`EventBody`), the entry that records it with
 * the change (`LogEntry`), and the small primitive a driver provides to keep entries (`EventLog`),
 * on which one recorder (recorder.ts) and, outside the core, one relay (src/events) run, the way
 * the upload engine runs on the staging primitive.
 *
 * An entry is written as an intent, under the change's lock and just before the change becomes
 * visible, then confirmed once it is, by the process that made the change. A process that dies in
 * between leaves an orphan intent, which is settled from what the store shows (`Witness`): the
 * change is visible, so the entry is confirmed; or it is not, so the entry goes. So no change is
 * ever without its entry and no entry ever without its change, across kill -9. Each driver says in
 * docs/events.md how its commit makes that exact.
 */

/** Who asked for a change, for the events that announce it. */
export interface ChangeOrigin {
  /** The principal's subject (a token's `sub`, `anonymous`, `signed-url:<kid>`). */
  subject?: string
  /** The request's id (`X-Request-Id`). */
  requestId?: string
}

export const EVENT_TYPES = [
  'file.created',
  'file.replaced',
  'file.moved',
  'file.deleted',
  'upload.created',
  'upload.completed',
  'upload.aborted',
  'upload.expired',
] as const

export type EventType = (typeof EVENT_TYPES)[number]

/** The version of the payload's shape (`data.schemaVersion`); a change that breaks a consumer bumps it. */
export const EVENT_SCHEMA_VERSION = 1

/**
 * An event's data as the store records it (the relay adds the store's name). Fields that do not
 * apply are absent: a folder has no size, an aborted upload no sha256.
 */
export interface EventData {
  schemaVersion: typeof EVENT_SCHEMA_VERSION
  /** `file` or `directory`: a folder moved or deleted is one event (see docs/events.md). */
  kind?: 'file' | 'directory'
  path: string
  /** Where it was before (`file.moved`). */
  from?: string
  size?: number
  sha256?: string
  etag?: string
  contentType?: string
  metadata?: Record<string, unknown>
  /** A folder moved or deleted: how many files it held when the change was made. */
  files?: number
  uploadId?: string
  /** An upload's declared size, when known. */
  totalSize?: number
  expiresAt?: string
  subject?: string
  requestId?: string
}

/** One event: its id (the `webhook-id`, the same on every try and after a crash), type and data. */
export interface EventBody {
  id: string
  type: EventType
  /** When the change was recorded (ISO 8601). */
  timestamp: string
  data: EventData
}

/**
 * How an orphan intent is settled: what the store shows once its change happened. Each driver
 * writes and reads its own; these are the shapes the disk and MongoDB drivers use.
 */
export type Witness =
  /** The change is visible when `path` holds the version committed as `revision`. */
  | { holds: { path: string; revision: string } }
  /** A file's version gone: visible when `path` no longer holds `revision` (see the drivers for what that proves). */
  | { lacks: { path: string; revision: string } }
  /** A folder's move or delete (disk): visible when `path` no longer names that folder (`ino`). */
  | { gone: { path: string; ino: number } }
  /** An upload's record written (`ended` false) or ended (true). */
  | { upload: { id: string; ended: boolean } }
  /** A change the driver finishes itself when its writer died part way (MongoDB folder moves and deletes). */
  | { finish: Record<string, unknown> }

/** What is recorded with a change: its events, how to order and how to settle them. */
export interface LogEntry {
  v: 1
  /** Sorts in the order changes were recorded (keys.ts); names the entry in every queue. */
  key: string
  /** The process that made the change (`EventLog.owner`), whose death makes an intent an orphan. */
  owner: string
  /**
   * The paths the change touches, for ordering: a relay delivers an entry to an endpoint only once
   * every earlier entry that touches one of them (or a folder above or below one) is done there.
   */
  paths: string[]
  witness: Witness
  events: EventBody[]
  /** A dead letter: why its consumer never took it. */
  dead?: DeadLetter
}

export interface DeadLetter {
  /** When it was given up (ISO 8601). */
  at: string
  attempts: number
  /** The consumer's last answer: an HTTP status, or absent when it did not answer. */
  status?: number
  error: string
}

/**
 * The primitive a driver provides for events (driver.ts `events`): named queues of entries, each
 * under its key, kept with the store's files. Queues are named `intents/<owner>`, `ready`,
 * `to/<consumer>`, `dead/<consumer>`; names are made of `[A-Za-z0-9._/-]`. Writes are durable as the
 * store's files are (across kill -9). Everything else (recording, settling, fan-out, delivery, dead
 * letters, the bound) is written once on top of these.
 */
export interface EventLog {
  /** This process's name among those using the store, under which it writes intents. */
  owner(): Promise<string>
  /** Whether `owner` may still be working: false once it is known dead or gone (its intents are orphans). */
  alive(owner: string): Promise<boolean>

  /** Writes `entry` into `queue` (a new key, or replacing the entry there). */
  put(queue: string, entry: LogEntry): Promise<void>
  /**
   * Moves the entry `key` from `from` to `to`: never in neither, and after a crash at worst in both.
   * False when it is not in `from` (moved or removed meanwhile).
   */
  move(from: string, to: string, key: string): Promise<boolean>
  /** Adds the entry `key` of `from` to each of `to` (fan-out), then removes it from `from`. */
  spread(from: string, to: string[], key: string): Promise<void>
  /** Removes the entry `key` from `queue`; false when it was not there. */
  remove(queue: string, key: string): Promise<boolean>
  /** The first `limit` keys of `queue`, in order (after the key `after`, when given). */
  keys(queue: string, limit: number, after?: string): Promise<string[]>
  /** The entries `keys` of `queue` that are still there, in key order. */
  read(queue: string, keys: string[]): Promise<LogEntry[]>
  /** The names of the queues under `prefix` (`intents/`, `to/`, `dead/`) that may hold entries. */
  queues(prefix: string): Promise<string[]>
  /** Entries in `queue`. */
  count(queue: string): Promise<number>
  /** Entries in every queue together: the backlog the bound applies to (it may cost a scan; called about once a second). */
  size(): Promise<number>

  /** Small named values shared by every process (an endpoint disabled by `410`). */
  readState(name: string): Promise<Record<string, unknown> | null>
  writeState(name: string, value: Record<string, unknown> | null): Promise<void>
  /**
   * Holds the lease `name` for this process (one relay per store): true while held. It is let go
   * when the process closes or dies (then another process may take it).
   */
  lease(name: string): Promise<boolean>

  /** Whether the change of an orphan `entry` is visible, from what the store shows (`entry.witness`). */
  settle(entry: LogEntry): Promise<boolean>
  /**
   * Whether an open intent must hold back later entries of its paths. False where a change of a path
   * can only begin once the earlier one's intent is confirmed or settled (the disk store's locks):
   * the relay then never reads the intents.
   */
  readonly intentsHoldBack: boolean
}

/** The first `limit` entries of `queue` (after `after`). */
export async function firstEntries(log: EventLog, queue: string, limit: number, after?: string): Promise<LogEntry[]> {
  return log.read(queue, await log.keys(queue, limit, after))
}

export const INTENTS = 'intents/'
export const READY = 'ready'
export const TO = 'to/'
export const DEAD = 'dead/'
export const intentsOf = (owner: string) => `${INTENTS}${owner}`
