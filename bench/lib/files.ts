/**
 * Source files for uploads, generated once and kept between runs (they are only bytes).
 */
import { randomBytes } from 'node:crypto'
import { existsSync, openSync, closeSync, renameSync, statSync, writeSync } from 'node:fs'

const BLOCK = 16 * 1024 * 1024

/** A file of `size` pseudo-random bytes at `path`, made unless it is there with that size already. */
export function ensureRandomFile(path: string, size: number): string {
  if (existsSync(path) && statSync(path).size === size) return path
  const block = randomBytes(Math.min(BLOCK, size))
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w')
  try {
    for (let written = 0; written < size; ) {
      const n = Math.min(block.length, size - written)
      written += writeSync(fd, block, 0, n)
    }
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  return path
}
