/**
 * What MongoDB errors mean to the storage core, on MongoDB and on FerretDB v1 (no server needed).
 */
import { MongoNetworkError, MongoNetworkTimeoutError, MongoServerError, MongoTopologyClosedError } from 'mongodb'
import { describe, expect, it } from 'vitest'
import { StorageError } from '../../src/storage/index.js'
import { isDuplicateKey, isOutOfSpace, isUnavailable, storageErrorOf } from '../../src/storage/mongo/connection.js'

const serverError = (code: number, message: string) => new MongoServerError({ code, errmsg: message, message })

describe('MongoDB errors', () => {
  it('knows a unique-index conflict as MongoDB (11000) and FerretDB v1 (1, UNIQUE constraint) report it', () => {
    expect(isDuplicateKey(serverError(11000, 'E11000 duplicate key error collection: db.catalog'))).toBe(true)
    expect(
      isDuplicateKey(serverError(1, "[msg_update.go:133] constraint failed: UNIQUE constraint failed: index 'catalog_75f68d18_path_1' (2067)")),
    ).toBe(true)
    expect(isDuplicateKey(serverError(1, 'some other internal error'))).toBe(false)
    expect(isDuplicateKey(serverError(2, 'invalid key'))).toBe(false)
    expect(isDuplicateKey(new Error('E11000'))).toBe(false)
  })

  it('turns unreachable servers and bad credentials into store_unavailable, and nothing else', () => {
    for (const e of [
      new MongoNetworkError('connection 3 to 127.0.0.1:27017 closed'),
      new MongoNetworkTimeoutError('timed out'),
      new MongoTopologyClosedError(),
      serverError(91, 'ShutdownInProgress'),
      serverError(18, 'Authentication failed'),
    ]) {
      expect(isUnavailable(e)).toBe(true)
      const mapped = storageErrorOf(e)
      expect(mapped).toBeInstanceOf(StorageError)
      expect((mapped as StorageError).code).toBe('store_unavailable')
    }
    const bug = serverError(238, 'findAndModify: support for field "fields" is not implemented yet')
    expect(isUnavailable(bug)).toBe(false)
    expect(storageErrorOf(bug)).toBe(bug) // a 500: the store asked for something the server cannot do
    const client = new StorageError('not_found', 'x')
    expect(storageErrorOf(client)).toBe(client)
  })

  it('turns a server out of space into insufficient_storage: MongoDB (14031) and FerretDB on SQLite (1, SQLITE_FULL)', () => {
    for (const e of [
      serverError(14031, 'Both the data and the journal files are out of disk space'),
      serverError(1, '[msg_insert.go:168 handler.(*Handler).MsgInsert] [db.go:167 fsql.(*DB).InTransaction] database or disk is full (13)'),
    ]) {
      expect(isOutOfSpace(e)).toBe(true)
      expect((storageErrorOf(e) as StorageError).code).toBe('insufficient_storage')
    }
    expect(isOutOfSpace(serverError(1, 'some other internal error'))).toBe(false)
    expect(isOutOfSpace(new Error('database or disk is full'))).toBe(false)
  })
})
