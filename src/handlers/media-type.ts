/**
 * Content types that reach a response header (SPEC 6, "served content is inert"). Every entry
 * (a PUT's Content-Type, a form part's, tus `filetype`, createupload's `contentType`) must be an RFC
 * 9110 media type: printable Latin-1, no CR/LF, at most 255 characters; anything else is refused
 * before a byte is stored. A type stored before this rule (or through the storage core directly) that
 * breaks it is served as `application/octet-stream`.
 *
 * Types a browser would run (HTML, SVG, XML, JavaScript) are "active": downloads send them as
 * attachments unless asked otherwise, always with a sandboxing Content-Security-Policy.
 */
import { StorageError } from '../storage/index.js'

export const MAX_MEDIA_TYPE_LENGTH = 255

const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+"
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"'
/** An RFC 9110 media type (`type/subtype` and parameters), anchored. */
export const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED}))?)*$`)

export const isMediaType = (value: string): boolean => value.length <= MAX_MEDIA_TYPE_LENGTH && MEDIA_TYPE.test(value)

/** A client's content type without surrounding spaces and tabs; `400 invalid_request` when it is not a media type. */
export function parseMediaType(value: string, source: string): string {
  const type = value.replace(/^[ \t]+|[ \t]+$/g, '') // OWS only: a CR or LF is refused, not trimmed
  if (!isMediaType(type)) {
    throw new StorageError(
      'invalid_request',
      `${source} is not a valid media type (type/subtype[; parameters], printable Latin-1, at most ${MAX_MEDIA_TYPE_LENGTH} characters)`,
    )
  }
  return type
}

/** What a stored type is served as: itself when it is a valid media type, else `application/octet-stream`. */
export const servedMediaType = (stored: string): string => (isMediaType(stored) ? stored : 'application/octet-stream')

const ACTIVE = new Set([
  'text/html',
  'application/xhtml+xml',
  'image/svg+xml',
  'text/xml',
  'application/xml',
  'text/xsl',
  'text/javascript',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/x-ecmascript',
  'text/ecmascript',
  'text/jscript',
  'text/livescript',
])

/** The type without parameters, lower-cased (`Text/HTML; charset=utf-8` is `text/html`). */
export const essenceOf = (type: string): string => type.split(';')[0]!.trim().toLowerCase()

/** HTML, SVG, XML (any `+xml`) and JavaScript: what a browser would render or run. */
export function isActiveType(type: string): boolean {
  const essence = essenceOf(type)
  return ACTIVE.has(essence) || essence.endsWith('+xml')
}

/** Sent with every download: nothing in it runs or loads anything, even when opened inline. */
export const DOWNLOAD_CSP = "default-src 'none'; sandbox"
