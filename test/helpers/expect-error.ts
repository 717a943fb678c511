/** Asserts that a promise rejects with a StorageError of the given code. */
import { expect } from 'vitest'
import { type ErrorCode, StorageError } from '../../src/storage/index.js'

export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<StorageError> {
  let caught: unknown
  try {
    await promise
  } catch (e) {
    caught = e
  }
  expect(caught, `expected a ${code} error`).toBeInstanceOf(StorageError)
  expect((caught as StorageError).code).toBe(code)
  return caught as StorageError
}
