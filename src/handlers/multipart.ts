/**
 * Streams the parts of a `multipart/form-data` body one at a time, with busboy: a file part's bytes
 * are read by the consumer before the next part is parsed, so memory stays flat however large the
 * files are (Hono's parseBody() would buffer the whole body).
 */
import { pipeline, Readable } from 'node:stream'
import busboy from 'busboy'
import { StorageError } from '../storage/index.js'

export type FormPart =
  | { kind: 'field'; name: string; value: string }
  | { kind: 'file'; name: string; filename: string; contentType: string; body: ReadableStream<Uint8Array> }

export interface FormLimits {
  fieldBytes: number
  fields: number
  files: number
}

type Event = { part: FormPart } | { error: unknown } | { done: true }

export async function* formParts(
  body: ReadableStream<Uint8Array>,
  contentType: string,
  limits: FormLimits,
): AsyncGenerator<FormPart> {
  let parser: busboy.Busboy
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      limits: { fieldSize: limits.fieldBytes, fields: limits.fields, files: limits.files },
      defParamCharset: 'utf8', // browsers send UTF-8 file names without filename*
      preservePath: true, // see the name as sent: "../x" is refused, not quietly cut to "x"
    })
  } catch (e) {
    throw new StorageError('invalid_request', `not a multipart/form-data body: ${(e as Error).message}`)
  }

  // Busboy pushes events; this queue lets the consumer pull them, one part at a time.
  const queue: Event[] = []
  let wake: (() => void) | undefined
  const push = (event: Event) => {
    queue.push(event)
    wake?.()
  }
  parser.on('field', (name, value, info) => {
    if (info.valueTruncated) push({ error: new StorageError('invalid_request', `the form field "${name}" is too long`) })
    else push({ part: { kind: 'field', name, value } })
  })
  parser.on('file', (name, stream, info) => {
    const body = Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>
    push({ part: { kind: 'file', name, filename: info.filename ?? '', contentType: info.mimeType, body } })
  })
  const tooMany = (what: string) => () => push({ error: new StorageError('invalid_request', `too many ${what} in the form`) })
  parser.on('filesLimit', tooMany('files'))
  parser.on('fieldsLimit', tooMany('fields'))
  parser.on('partsLimit', tooMany('parts'))

  const source = Readable.fromWeb(body as never)
  // Which side failed first: pipeline destroys the other one with the same error.
  let bodyFailedFirst: boolean | undefined
  source.once('error', () => (bodyFailedFirst ??= true))
  parser.once('error', () => (bodyFailedFirst ??= false))
  // pipeline, not pipe: a body that breaks off (the client went away) destroys the parser, and
  // busboy then fails the file stream being read, so the upload of that part stops at once. Its
  // callback is the one end of the form: after the last part, or at the first failure.
  pipeline(source, parser, (e) => {
    if (!e) return push({ done: true })
    const message = bodyFailedFirst
      ? 'the request body ended before it was complete'
      : `the form could not be read: ${e.message}`
    push({ error: new StorageError('invalid_request', message, { cause: e }) })
  })
  try {
    for (;;) {
      const event = queue.shift()
      if (!event) {
        await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
        continue
      }
      if ('error' in event) throw event.error
      if ('done' in event) return
      yield event.part
    }
  } finally {
    parser.removeAllListeners()
    parser.on('error', () => {})
    source.destroy()
    parser.destroy()
  }
}
