/** The path rules of SPEC 3.2. */
import { describe, expect, it } from 'vitest'
import { parseName, parsePath, StorageError } from '../../src/storage/index.js'

const refused = (raw: string, options?: { folder?: boolean }) => {
  try {
    parsePath(raw, options)
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError)
    expect((e as StorageError).code).toBe('invalid_path')
    return true
  }
  return false
}

describe('path rules', () => {
  it('accepts ordinary paths and normalizes them to NFC', () => {
    expect(parsePath('a/b/c.txt')).toBe('a/b/c.txt')
    expect(parsePath('cafe\u0301.txt')).toBe('café.txt')
    expect(parsePath('with space/and-dash_under.score')).toBe('with space/and-dash_under.score')
    expect(parsePath('.hidden/..dots../x.')).toBe('.hidden/..dots../x.')
    expect(parsePath('😀/%2e%2e')).toBe('😀/%2e%2e') // already decoded once: a literal name
  })

  it.each([
    ['empty path', ''],
    ['leading slash (empty segment)', '/a'],
    ['double slash', 'a//b'],
    ['trailing slash on a file', 'a/'],
    ['dot segment', 'a/./b'],
    ['dot-dot segment', 'a/../b'],
    ['only dot-dot', '..'],
    ['NUL', 'a\u0000b'],
    ['control character', 'a\u0007b'],
    ['newline', 'a\nb'],
    ['DEL', 'a\u007fb'],
    ['C1 control', 'a\u0085b'],
    ['backslash', 'a\\b'],
    ['windows traversal', '..\\..\\etc'],
    ['reserved top-level name', '.filestorage/meta/x'],
    ['reserved name alone', '.filestorage'],
    ['segment over 255 bytes', 'é'.repeat(128)],
    ['path over 1024 bytes', Array.from({ length: 9 }, () => 'x'.repeat(120)).join('/')],
    ['lone surrogate', 'a\ud800b'],
  ])('refuses %s', (_label, raw) => {
    expect(refused(raw)).toBe(true)
  })

  it('allows the reserved name below the top level', () => {
    expect(parsePath('a/.filestorage')).toBe('a/.filestorage')
  })

  it('accepts exactly 255-byte segments and 1024-byte paths', () => {
    expect(parsePath('x'.repeat(255))).toHaveLength(255)
    const path = Array.from({ length: 8 }, () => 'y'.repeat(127)).join('/')
    expect(Buffer.byteLength(path)).toBe(1023)
    expect(parsePath(`${path}z`)).toHaveLength(1024)
  })

  it('treats an empty folder path as the root and tolerates one trailing slash', () => {
    expect(parsePath('', { folder: true })).toBe('')
    expect(parsePath('/', { folder: true })).toBe('')
    expect(parsePath('a/b/', { folder: true })).toBe('a/b')
    expect(refused('a//', { folder: true })).toBe(true)
    expect(refused('//', { folder: true })).toBe(true)
  })

  it('takes a form file name as one segment', () => {
    expect(parseName('report.pdf')).toBe('report.pdf')
    expect(() => parseName('dir/report.pdf')).toThrow(StorageError)
    expect(() => parseName('..')).toThrow(StorageError)
  })
})
