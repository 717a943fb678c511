/**
 * The MongoDB drivers: the storage contract, unchanged, on each way of keeping the bytes
 * (mongo-inline, gridfs, and the combined mongo store), against the server MONGODB_URI points at.
 */
import { describe } from 'vitest'
import { MongoConnection, MongoDriver, type MongoDriverKind } from '../../src/storage/index.js'
import { requireService } from '../helpers/external.js'
import { testDatabase } from '../helpers/mongo.js'
import { describeStorageContract } from './contract.js'

const uri = requireService('MONGODB_URI', 'MongoDB')

/** Small enough that the contract's files fall on both sides of it. */
const CONTRACT_INLINE_MAX = 64 * 1024

describe.runIf(uri !== undefined)('MongoDB drivers', () => {
  for (const kind of ['mongo-inline', 'gridfs', 'mongo'] as MongoDriverKind[]) {
    const database = testDatabase(uri!, kind.replace('-', '_'))
    const connection = new MongoConnection(database.client)
    describeStorageContract(kind, {
      async open(policy) {
        await database.clear()
        return MongoDriver.open({ connection, db: database.name, kind, inlineMaxBytes: CONTRACT_INLINE_MAX, uploads: policy })
      },
      cleanup: () => database.drop(),
    })
  }
})
