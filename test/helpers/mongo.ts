/**
 * MongoDB for tests: each suite works in a database of its own (random name), dropped at the end,
 * so suites never see each other's data and a failed run leaves nothing shared behind.
 */
import { randomBytes } from 'node:crypto'
import { type Db, MongoClient, type MongoClientOptions } from 'mongodb'

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
