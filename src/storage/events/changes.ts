/**
 * What a change did, as a driver or the upload engine tells it at its commit, and the events that
 * announce it (docs/events.md has the payloads).
 *
 * A folder moved or deleted is one event (`kind: "directory"`, with the number of files it held),
 * not one per file: a change is one entry, so a folder of a million files costs one slot of the
 * bounded backlog, is recorded atomically with the one rename that moves it on disk, and its
 * consumers get one message to act on (re-list the new folder, drop everything under the old one).
 */
import type { StoredEntry, StoredFile } from '../types.js'
import { eventId } from './keys.js'
import { type ChangeOrigin, EVENT_SCHEMA_VERSION, type EventBody, type EventData, type EventType } from './types.js'

export type Change =
  /** A file written (a put, or a completed upload's `uploadId`). */
  | { kind: 'written'; file: StoredFile; created: boolean; uploadId?: string }
  | { kind: 'moved'; from: string; to: StoredEntry; files?: number }
  /** `entry` as it was just before it went. */
  | { kind: 'deleted'; entry: StoredEntry; files?: number }
  | {
      kind: 'upload'
      type: 'upload.created' | 'upload.aborted' | 'upload.expired'
      uploadId: string
      path: string
      totalSize?: number
      contentType?: string
      metadata?: Record<string, unknown>
      expiresAt?: string
    }

/** The paths a change touches (for the order of delivery). */
export function pathsOf(change: Change): string[] {
  switch (change.kind) {
    case 'written':
      return [change.file.path]
    case 'moved':
      return [change.from, change.to.path]
    case 'deleted':
      return [change.entry.path]
    case 'upload':
      return [change.path]
  }
}

/** The events announcing `change`, recorded as entry `key` at `timestamp`. */
export function eventsOf(change: Change, origin: ChangeOrigin | undefined, key: string, timestamp: string): EventBody[] {
  const who = {
    ...(origin?.subject !== undefined ? { subject: origin.subject } : {}),
    ...(origin?.requestId !== undefined ? { requestId: origin.requestId } : {}),
  }
  const event = (n: number, type: EventType, data: Omit<EventData, 'schemaVersion'>): EventBody => ({
    id: eventId(key, n),
    type,
    timestamp,
    data: { schemaVersion: EVENT_SCHEMA_VERSION, ...data, ...who },
  })
  switch (change.kind) {
    case 'written': {
      const written = event(0, change.created ? 'file.created' : 'file.replaced', { kind: 'file', ...fileFacts(change.file) })
      if (change.uploadId === undefined) return [written]
      return [written, event(1, 'upload.completed', { kind: 'file', ...fileFacts(change.file), uploadId: change.uploadId })]
    }
    case 'moved':
      return [event(0, 'file.moved', { ...entryFacts(change.to, change.files), from: change.from })]
    case 'deleted':
      return [event(0, 'file.deleted', entryFacts(change.entry, change.files))]
    case 'upload':
      return [
        event(0, change.type, {
          path: change.path,
          uploadId: change.uploadId,
          ...(change.totalSize !== undefined ? { totalSize: change.totalSize } : {}),
          ...(change.contentType !== undefined ? { contentType: change.contentType } : {}),
          ...(change.metadata !== undefined ? { metadata: change.metadata } : {}),
          ...(change.expiresAt !== undefined ? { expiresAt: change.expiresAt } : {}),
        }),
      ]
  }
}

function fileFacts(file: StoredFile): Omit<EventData, 'schemaVersion'> {
  return {
    path: file.path,
    size: file.size,
    sha256: file.sha256,
    etag: file.etag,
    contentType: file.contentType,
    metadata: file.metadata,
  }
}

function entryFacts(entry: StoredEntry, files: number | undefined): Omit<EventData, 'schemaVersion'> {
  if (entry.type === 'file') return { kind: 'file', ...fileFacts(entry) }
  return { kind: 'directory', path: entry.path, ...(files !== undefined ? { files } : {}) }
}
