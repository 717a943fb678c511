/**
 * The zod schemas of the API: what requests carry and responses return. Registered as OpenAPI
 * components, so the generated document names them.
 */
import { z } from '@hono/zod-openapi'
import { MAX_MEDIA_TYPE_LENGTH, MEDIA_TYPE } from './media-type.js'

export const StoreParam = z.string().openapi({
  param: { name: 'store', in: 'path' },
  description: 'Name of the store, e.g. `disk` or `mongo`.',
  example: 'disk',
})

/**
 * What SPEC 3.2 accepts as a path, as a pattern: segments of 1 to 255 characters without `/`, `\\`
 * or control characters, none of them `.` or `..`. The server counts the limits in UTF-8 bytes
 * (255 a segment, 1024 in all) and refuses the top-level name `.filestorage`; a pattern can say
 * neither, so the descriptions do.
 */
const SEGMENT_CHAR = '[^/\\\\\\x00-\\x1f\\x7f-\\x9f]'
const SEGMENT_FIRST = '[^./\\\\\\x00-\\x1f\\x7f-\\x9f]'
const SEGMENT = `(?:${SEGMENT_FIRST}${SEGMENT_CHAR}{0,254}|\\.${SEGMENT_FIRST}${SEGMENT_CHAR}{0,253}|\\.\\.${SEGMENT_CHAR}{1,253})`
export const PATH_PATTERN = `^${SEGMENT}(?:/${SEGMENT})*$`
/** A folder: a path, or empty for the root, with one trailing slash allowed. */
export const DIR_PATTERN = `^(?:${SEGMENT}(?:/${SEGMENT})*/?)?$`
const PATH_RULES =
  'Segments joined by `/` (percent-encoded as usual), each at most 255 bytes of UTF-8, at most 1024 bytes in all; ' +
  'no empty, `.` or `..` segment, no backslash or control character, and not under the reserved top-level `.filestorage`.'

/** A file path: segments joined by `/`, percent-encoded as needed. Validated by the path rules (SPEC 3.2). */
export const PathParam = z.string().openapi({
  param: { name: 'path', in: 'path' },
  description: `Path of the file inside the store. ${PATH_RULES}`,
  pattern: PATH_PATTERN,
  maxLength: 1024,
  example: 'reports/2024/summary.pdf',
})

export const DirParam = z.string().openapi({
  param: { name: 'dir', in: 'path' },
  description: `Path of a folder inside the store; empty for the root. ${PATH_RULES}`,
  pattern: DIR_PATTERN,
  maxLength: 1025,
  example: 'reports/2024',
})

/**
 * The folder of a form upload (`POST /{store}/upload/{path}`): a folder path, under the name `path`
 * because the PUT on the same URL names it so, and OpenAPI takes two templates that differ only in
 * their parameter names for one path (they must not both exist): each method keeps its own rules.
 */
export const FormFolderParam = DirParam.openapi({ param: { name: 'path', in: 'path' } })

export const UploadIdParam = z.string().openapi({
  param: { name: 'uploadId', in: 'path' },
  description: 'Id returned by createupload (any other answers `404`).',
  example: '4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99',
})

/**
 * A whole number in a query string, written in plain decimal digits: `12`, never `+12`, `1e1`,
 * `0x0c`, ` 12`, `12.0` or `012`, which Number() would all read as 12. One spelling per number.
 */
export const decimalQuery = (min: number, max: number, description: string) =>
  z
    .string()
    .regex(/^(0|[1-9][0-9]*)$/, 'must be a whole number in plain decimal digits (no sign, exponent, spaces or leading zeros)')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .openapi({ type: 'integer', minimum: min, maximum: max, description: `${description} Plain decimal digits, no leading zeros.` })

/**
 * `true` or `false` in a query string, the spellings of the boolean the document declares. Nothing
 * else, and in particular not an empty value: `delete/x?recursive=` must not remove a whole folder.
 */
export const BooleanQuery = z
  .enum(['true', 'false'])
  .optional()
  .transform((v) => v === 'true')
  .openapi({ type: 'boolean' })

const Metadata = z.record(z.string(), z.unknown()).openapi({
  description: "The client's own JSON object (at most 16 KiB), from `X-File-Metadata` or the form's `metadata` field.",
  example: { owner: 'ana', project: 'apollo' },
})

export const FileInfoSchema = z
  .object({
    type: z.literal('file'),
    store: z.string(),
    path: z.string().openapi({ example: 'reports/2024/summary.pdf' }),
    name: z.string().openapi({ example: 'summary.pdf' }),
    size: z.number().int().openapi({ example: 48213 }),
    contentType: z.string().openapi({ example: 'application/pdf' }),
    sha256: z.string().openapi({ example: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' }),
    etag: z.string().openapi({ example: '"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"' }),
    created: z.string().openapi({ format: 'date-time' }),
    modified: z.string().openapi({ format: 'date-time' }),
    metadata: Metadata,
    driver: z.enum(['disk', 'mongo-inline', 'gridfs', 's3']).openapi({
      description: 'Informative: which driver holds the bytes.',
    }),
  })
  .openapi('FileInfo')

export const DirectoryInfoSchema = z
  .object({
    type: z.literal('directory'),
    store: z.string(),
    path: z.string().openapi({ example: 'reports/2024' }),
    name: z.string().openapi({ example: '2024' }),
  })
  .openapi('DirectoryInfo')

export const EntrySchema = z.union([FileInfoSchema, DirectoryInfoSchema]).openapi('Entry')

export const ListPageSchema = z
  .object({
    entries: z.array(EntrySchema),
    nextCursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for the next page; null on the last.' }),
  })
  .openapi('ListPage')

export const UploadSessionSchema = z
  .object({
    uploadId: z.string(),
    path: z.string(),
    partSizeLimit: z.number().int(),
    createdAt: z.string().openapi({ format: 'date-time' }),
    expiresAt: z.string().openapi({ format: 'date-time' }),
    totalSize: z.number().int().optional().openapi({
      description: 'Size of the whole, once known (uploads made with tus declare it).',
    }),
  })
  .openapi('UploadSession')

export const PartInfoSchema = z
  .object({ part: z.number().int(), size: z.number().int(), sha256: z.string() })
  .openapi('PartInfo')

export const UploadStatusSchema = UploadSessionSchema.extend({
  contentType: z.string().optional(),
  metadata: Metadata,
  attributes: z.record(z.string(), z.string()).openapi({
    description: 'What a protocol keeps with the upload (tus: `Upload-Metadata` as sent).',
  }),
  parts: z.array(PartInfoSchema),
  received: z.number().int().openapi({ description: 'Bytes received so far (the sum of the part sizes).' }),
}).openapi('UploadStatus')

export const MetadataSchema = Metadata

/** An `If-Match` / `If-None-Match` value (RFC 9110): `*`, or a comma-separated list of entity tags. */
export const ETAG_LIST = /^(?:\*|(?:W\/)?"[\x21\x23-\x7e]*"(?:[ \t]*,[ \t]*(?:W\/)?"[\x21\x23-\x7e]*")*)$/

export const EtagListHeader = (description: string) =>
  z
    .string()
    .regex(ETAG_LIST, 'must be * or a list of quoted entity tags, e.g. "abc"')
    .openapi({ description, example: '"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"' })

/** A content type in a JSON body: an RFC 9110 media type, as `parseMediaType` accepts it (`400` otherwise). */
export const MediaTypeField = (description: string) =>
  z.string().max(MAX_MEDIA_TYPE_LENGTH).regex(MEDIA_TYPE, 'must be a media type (type/subtype[; parameters])').openapi({ description })

/** `If-None-Match` on a write: `*` only (create, never replace). */
export const CreateOnlyHeader = z.literal('*').openapi({ description: '`*`: create only, never replace (`412` if it exists).' })

export const Sha256Header = (description: string) =>
  z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hexadecimal characters')
    .openapi({ description, example: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' })

/**
 * `X-File-Metadata`: a JSON object. Documented as a header whose content is JSON (see docs.ts),
 * which schemathesis and other generators serialize as JSON.
 */
export const MetadataHeader = z.string().openapi({
  description: 'JSON object stored with the file as `metadata` (at most 16 KiB).',
  example: '{"owner":"ana"}',
})
