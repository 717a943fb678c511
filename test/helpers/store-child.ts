/**
 * A separate process that opens a store and performs one operation, for tests that need a second
 * process on the same store or a process killed part way (`kill -9`, or a failpoint set in
 * FILESTORAGE_FAILPOINTS). Run with `node --import tsx test/helpers/store-child.ts '<json>'` (the tests
 * run it compiled: ./compiled.ts); it
 * prints `ready` once the store is open and `done <json result>` when the operation finished.
 */
import { DiskDriver, MongoDriver, S3Driver, type Store, withUploads } from '../../src/storage/index.js'

interface Command {
  /** The disk store's folder; or `mongo` to open the mongo store at `uri` and `db`. */
  dir?: string
  mongo?: { uri: string; db: string }
  /** Or the s3 store: the run's S3 server, bucket and the store's prefix. */
  s3?: { endpoint: string; region: string; bucket: string; prefix: string; accessKeyId: string; secretAccessKey: string }
  /** Upload policy of the store (e.g. a short completion lease, also the mongo store's liveness window). */
  uploads?: { completionLeaseMs?: number }
  op: 'hold' | 'lease' | 'put' | 'complete' | 'append' | 'delete' | 'move'
  path?: string
  /** move: where to. */
  to?: string
  /** Record events (their intents, so that a kill leaves some to settle). */
  events?: boolean
  uploadId?: string
  offset?: number
  /** Bytes of the body (put, append): `size` bytes of `fill`. */
  size?: number
  fill?: number
  contentType?: string
  metadata?: Record<string, unknown>
  recursive?: boolean
  /** After this many bytes of the body were taken, wait a moment and die (SIGKILL). */
  dieAfterBytes?: number
  keepPartial?: boolean
  /** append: this many appends of the body, one after the other (the next extends the part the last one left). */
  repeat?: number
}

const command = JSON.parse(process.argv[2]!) as Command

function body(): ReadableStream<Uint8Array> {
  let sent = 0
  const size = command.size ?? 0
  const chunk = 64 * 1024
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (command.dieAfterBytes !== undefined && sent >= command.dieAfterBytes) {
        // Long enough for what was taken to reach the file, then die as kill -9 would.
        await new Promise((r) => setTimeout(r, 200))
        process.kill(process.pid, 'SIGKILL')
      }
      if (sent >= size) return controller.close()
      const n = Math.min(chunk, size - sent)
      controller.enqueue(new Uint8Array(n).fill(command.fill ?? 0))
      sent += n
    },
  }, { highWaterMark: 0 })
}

const window = command.uploads?.completionLeaseMs
function s3(where: NonNullable<Command['s3']>) {
  const { accessKeyId, secretAccessKey, ...place } = where
  return S3Driver.open({ ...place, credentials: { accessKeyId, secretAccessKey }, ...(window !== undefined ? { livenessWindowMs: window } : {}) })
}

const store: Store = withUploads(
  command.mongo
    ? MongoDriver.open({ uri: command.mongo.uri, db: command.mongo.db, ...(window !== undefined ? { livenessWindowMs: window } : {}) })
    : command.s3
      ? s3(command.s3)
      : await DiskDriver.open({ dir: command.dir! }),
  command.uploads,
)
if (command.events) await store.events!.enable({ maxBacklog: 1_000_000 })
process.stdout.write('ready\n')
let result: unknown = null
switch (command.op) {
  case 'hold':
    await new Promise(() => setInterval(() => {}, 60_000)) // until killed
    break
  case 'lease':
    // Takes the relay's lease of the store's events, says so, and holds it until killed.
    process.stdout.write(`lease ${await store.events!.log.lease('relay')}\n`)
    await new Promise(() => setInterval(() => {}, 60_000))
    break
  case 'put':
    result = await store.put(command.path!, body(), {
      ...(command.contentType ? { contentType: command.contentType } : {}),
      ...(command.metadata ? { metadata: command.metadata } : {}),
    })
    break
  case 'complete':
    result = await store.completeUpload(command.uploadId!)
    break
  case 'append':
    for (let i = 0; i < (command.repeat ?? 1); i++) {
      result = await store.appendPart(command.uploadId!, body(), {
        offset: (command.offset ?? 0) + i * (command.size ?? 0),
        ...(command.keepPartial ? { keepPartial: true } : {}),
      })
    }
    break
  case 'delete':
    await store.delete(command.path!, { recursive: command.recursive ?? false })
    break
  case 'move':
    result = await store.move(command.path!, command.to!)
    break
}
process.stdout.write(`done ${JSON.stringify(result)}\n`)
process.exit(0) // without close(): exits like a process that is stopped, leaving its record to be reaped
