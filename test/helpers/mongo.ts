/**
 * MongoDB for tests: each suite works in a database of its own (random name), dropped at the end,
 * so suites never see each other's data and a failed run leaves nothing shared behind.
 */
import { randomBytes } from 'node:crypto'
import { type CommandStartedEvent, type CommandSucceededEvent, type Db, MongoClient, type MongoClientOptions } from 'mongodb'

/** A fresh database name: letters, digits and underscores only (what every MongoDB-wire server takes). */
export const randomDbName = (label: string): string => `fs_test_${label}_${randomBytes(5).toString('hex')}`

export interface TestDatabase {
  name: string
  client: MongoClient
  db: Db
  /** Empties every collection (keeping the indexes), for a fresh store per test. */
  clear(): Promise<void>
  /** Drops the database and closes the client. */
  drop(): Promise<void>
}

export function testDatabase(uri: string, label: string, options: MongoClientOptions = {}): TestDatabase {
  const name = randomDbName(label)
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000, ...options })
  const db = client.db(name)
  return {
    name,
    client,
    db,
    async clear() {
      for (const { name: collection } of await db.listCollections({}, { nameOnly: true }).toArray()) {
        await db.collection(collection).deleteMany({})
      }
    },
    async drop() {
      try {
        await db.dropDatabase()
      } finally {
        await client.close()
      }
    },
  }
}

/** Drops a database through a short-lived client (for databases a service process filled). */
export async function dropDatabase(uri: string, name: string): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 })
  try {
    await client.db(name).dropDatabase()
  } finally {
    await client.close()
  }
}

/** What the driver's command monitoring saw of reads from the GridFS chunks collection. */
export interface ChunkReads {
  /** Chunk documents the server returned (in `find` and `getMore` batches). */
  documents: number
  /** The filters and limits of the `find` commands on the chunks. */
  finds: { filter: Record<string, unknown>; limit: number | undefined }[]
  reset(): void
  stop(): void
}

/** Counts chunk documents read through `client` (created with `monitorCommands: true`). */
export function watchChunkReads(client: MongoClient, bucket = 'fs'): ChunkReads {
  const chunks = `${bucket}.chunks`
  const reads: ChunkReads = {
    documents: 0,
    finds: [],
    reset() {
      reads.documents = 0
      reads.finds = []
    },
    stop() {
      client.off('commandStarted', onStarted)
      client.off('commandSucceeded', onSucceeded)
    },
  }
  const onStarted = (e: CommandStartedEvent) => {
    if (e.commandName === 'find' && e.command.find === chunks) {
      reads.finds.push({ filter: e.command.filter as Record<string, unknown>, limit: e.command.limit as number | undefined })
    }
  }
  const onSucceeded = (e: CommandSucceededEvent) => {
    const cursor = (e.reply as { cursor?: { ns?: string; firstBatch?: unknown[]; nextBatch?: unknown[] } }).cursor
    if (cursor?.ns?.endsWith(`.${chunks}`)) reads.documents += (cursor.firstBatch ?? cursor.nextBatch ?? []).length
  }
  client.on('commandStarted', onStarted)
  client.on('commandSucceeded', onSucceeded)
  return reads
}

/** Counts the commands that write to the GridFS chunks collection. */
export function watchChunkWrites(client: MongoClient, bucket = 'fs'): { writes: number; stop(): void } {
  const chunks = `${bucket}.chunks`
  const watch = {
    writes: 0,
    stop: () => client.off('commandStarted', onStarted),
  }
  const onStarted = (e: CommandStartedEvent) => {
    if ((e.commandName === 'insert' || e.commandName === 'update') && e.command[e.commandName] === chunks) watch.writes++
  }
  client.on('commandStarted', onStarted)
  return watch
}
