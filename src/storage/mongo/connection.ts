/**
 * The MongoDB client of a store, and what its errors mean to the storage core.
 *
 * The client never blocks start-up: it connects on the first operation, and again after a failed
 * attempt (a `MongoClient` whose first connect failed stays closed for good otherwise). Server
 * selection is bounded, so an unreachable server turns into `store_unavailable` within seconds,
 * and the driver's monitoring finds the server again by itself when it returns.
 */
import {
  MongoBulkWriteError,
  MongoClient,
  type MongoClientOptions,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
} from 'mongodb'
import { insufficientStorage, StorageError } from '../errors.js'

/** How long an operation waits for a server before the store answers `store_unavailable`. */
export const DEFAULT_SERVER_SELECTION_TIMEOUT_MS = 2000

export type MongoConnectionOptions = MongoClientOptions

export class MongoConnection {
  readonly client: MongoClient
  readonly #owned: boolean
  #closed = false

  /**
   * Wraps a client. An owned one is closed with the connection; a borrowed one (shared by several
   * stores, or by a test watching its commands) is left to its owner.
   */
  constructor(client: MongoClient, options: { owned?: boolean } = {}) {
    this.client = client
    this.#owned = options.owned ?? false
  }

  /** A client of its own, with bounded timeouts unless the URI sets them. */
  static fromUri(uri: string, options: MongoConnectionOptions = {}): MongoConnection {
    const params = new URLSearchParams(uri.includes('?') ? uri.slice(uri.indexOf('?') + 1) : '')
    const unlessInUri = (name: string, value: number) =>
      [...params.keys()].some((k) => k.toLowerCase() === name.toLowerCase()) ? {} : { [name]: value }
    const client = new MongoClient(uri, {
      ...unlessInUri('serverSelectionTimeoutMS', DEFAULT_SERVER_SELECTION_TIMEOUT_MS),
      ...unlessInUri('connectTimeoutMS', DEFAULT_SERVER_SELECTION_TIMEOUT_MS),
      appName: 'filestorage',
      ...options,
    })
    return new MongoConnection(client, { owned: true })
  }

  /** Runs an operation on a connected client; connectivity failures become `store_unavailable`. */
  async run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StorageError('store_unavailable', 'the store is closed')
    try {
      await this.client.connect() // at once when connected; a new attempt after a failed one
      return await operation()
    } catch (e) {
      throw storageErrorOf(e)
    }
  }

  /** Closes an owned client for good; a borrowed one is its owner's to close. */
  async close(): Promise<void> {
    if (!this.#owned || this.#closed) return
    this.#closed = true
    await this.client.close()
  }
}

// Server error codes that mean "no usable server right now", not "your request is wrong".
const UNAVAILABLE_CODES = new Set([
  13, // Unauthorized: the configured user may not do this (a deployment problem, not the client's)
  18, // AuthenticationFailed: wrong credentials in MONGODB_URI
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
])

/** True when the error says the server cannot be reached (or is going away), not that the request failed. */
export function isUnavailable(e: unknown): boolean {
  return (
    e instanceof MongoNetworkError || // also timeouts and cleared pools
    e instanceof MongoServerSelectionError ||
    e instanceof MongoTopologyClosedError ||
    e instanceof MongoNotConnectedError ||
    e instanceof MongoServerClosedError ||
    e instanceof MongoOperationTimeoutError ||
    (e instanceof MongoServerError && typeof e.code === 'number' && UNAVAILABLE_CODES.has(e.code))
  )
}

/**
 * True when the server refused a write for want of space: MongoDB's OutOfDiskSpace (14031), or
 * FerretDB's `InternalError` (code 1) carrying SQLite's SQLITE_FULL ("database or disk is full").
 */
export function isOutOfSpace(e: unknown): boolean {
  if (!(e instanceof MongoServerError)) return false
  return e.code === 14031 || (e.code === 1 && /database or disk is full/.test(e.message))
}

/**
 * A connectivity failure as `store_unavailable`, a full server as `insufficient_storage`; anything
 * else as it is (a StorageError, or a bug).
 */
export function storageErrorOf(e: unknown): unknown {
  if (e instanceof StorageError) return e
  if (isUnavailable(e)) {
    return new StorageError('store_unavailable', 'MongoDB is unavailable right now; try again shortly', { cause: e })
  }
  if (isOutOfSpace(e)) return insufficientStorage(e)
  return e
}

/**
 * True for a unique-index conflict. MongoDB reports 11000 (also inside bulk writes); FerretDB v1
 * reports 11000 on inserts and upserts but `InternalError` (code 1) with SQLite's "UNIQUE
 * constraint failed" when an update moves a document onto a taken key.
 */
export function isDuplicateKey(e: unknown): boolean {
  if (!(e instanceof MongoError)) return false
  if (e.code === 11000 || e.code === 11001) return true
  if (e instanceof MongoBulkWriteError && e.writeErrors) {
    const errors = Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors]
    if (errors.some((w) => w.code === 11000)) return true
  }
  return e.code === 1 && /UNIQUE constraint failed/.test(e.message)
}
