/**
 * The zod schemas of the API: what requests carry and responses return. Registered as OpenAPI
 * components, so the generated document names them.
 */
import { z } from '@hono/zod-openapi'

export const StoreParam = z.string().openapi({
  param: { name: 'store', in: 'path' },
  description: 'Name of the store, e.g. `disk` or `mongo`.',
  example: 'disk',
})

/** A file path: segments joined by `/`, percent-encoded as needed. Validated by the path rules (SPEC 3.2). */
export const PathParam = z.string().openapi({
  param: { name: 'path', in: 'path' },
  description: 'Path of the file inside the store, segments joined by `/`.',
  example: 'reports/2024/summary.pdf',
})

export const DirParam = z.string().openapi({
  param: { name: 'dir', in: 'path' },
  description: 'Path of a folder inside the store; empty for the root.',
  example: 'reports/2024',
})

export const UploadIdParam = z.string().openapi({
  param: { name: 'uploadId', in: 'path' },
  description: 'Id returned by createupload.',
  example: '4f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99',
})

/** `true`/`false` (or `1`/`0`) in a query string. */
export const BooleanQuery = z
  .enum(['true', 'false', '1', '0', ''])
  .optional()
  .transform((v) => v === 'true' || v === '1' || v === '')
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
    driver: z.enum(['disk', 'mongo-inline', 'gridfs']).openapi({
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
