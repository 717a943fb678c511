/**
 * Versions of files the audits wrote, and how a read is matched to one of them: every read must
 * show one version entirely (its bytes, size, ETag, sha256, content type and metadata), never a
 * mix of two.
 */
import { randomBytes } from 'node:crypto'
import { sha256 } from '../helpers/streams.js'

export interface Version {
  path: string
  sha256: string
  size: number
  contentType: string
  /** Canonical JSON of the metadata sent. */
  metadata: string
  /** When the write started and when its answer arrived (performance.now()); `end` unset while in flight or failed. */
  start: number
  end?: number
}

/** Content types the writers pick from (never application/octet-stream, which a lost type falls back to). */
export const CONTENT_TYPES = ['text/plain', 'image/png', 'application/json', 'application/pdf', 'audio/ogg', 'video/mp4', 'text/csv', 'image/webp']

/** JSON with sorted keys, so equal objects compare equal. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(value)
}

export const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!

/** A new version's content and attributes: random bytes (so its sha256 identifies it), a content type, unique metadata. */
export function newVersion(path: string, size: number, label: string): { body: Buffer; version: Version; metadataJson: string } {
  const body = randomBytes(Math.max(size, 16))
  const metadata = { by: label, nonce: randomBytes(6).toString('hex'), n: Math.floor(Math.random() * 1e6) }
  const version: Version = {
    path,
    sha256: sha256(body),
    size: body.length,
    contentType: pick(CONTENT_TYPES),
    metadata: canonical(metadata),
    start: performance.now(),
  }
  return { body, version, metadataJson: JSON.stringify(metadata) }
}

/** Every version written, by sha256. */
export class VersionLog {
  private readonly bySha = new Map<string, Version>()
  readonly all: Version[] = []

  add(v: Version): void {
    this.bySha.set(v.sha256, v)
    this.all.push(v)
  }

  get(sha: string | null | undefined): Version | undefined {
    return sha ? this.bySha.get(sha) : undefined
  }

  /**
   * The versions of `path` that may be its final state: the write that started last, and any
   * write whose answer came after that one started (they overlapped, so either may have won).
   */
  finalCandidates(path: string): Version[] {
    const done = this.all.filter((v) => v.path === path && v.end !== undefined)
    if (done.length === 0) return []
    const lastStart = Math.max(...done.map((v) => v.start))
    return done.filter((v) => v.start === lastStart || v.end! > lastStart)
  }
}

/** What a read showed, in the terms a version is made of (undefined: the read did not carry it). */
export interface Seen {
  path: string
  sha256?: string | null
  size?: number | null
  etag?: string | null
  contentType?: string | null
  metadata?: string
}

/** Why `seen` is not exactly `version` (or no version at all); empty when it is. */
export function differences(seen: Seen, version: Version | undefined, what: string): string[] {
  if (!version) return [`${what} of ${seen.path}: sha256 ${seen.sha256} is no version ever written`]
  const out: string[] = []
  const expect = (field: string, got: unknown, want: unknown) => {
    if (got !== undefined && got !== want) out.push(`${what} of ${seen.path}: ${field} ${JSON.stringify(got)}, the version written has ${JSON.stringify(want)}`)
  }
  expect('path', seen.path, version.path)
  expect('size', seen.size, version.size)
  expect('sha256', seen.sha256, version.sha256)
  expect('ETag', seen.etag, `"${version.sha256}"`)
  expect('content type', seen.contentType, version.contentType)
  expect('metadata', seen.metadata, version.metadata)
  return out
}
