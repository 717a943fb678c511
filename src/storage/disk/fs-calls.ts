/**
 * The file-system calls on the disk store's busy paths (a commit, a lookup, a download's open), as
 * promises made from Node's callback API rather than taken from `node:fs/promises`.
 *
 * Why: both go through libuv's thread pool alike (the same system call, on a pool thread), but the
 * promise API wraps each call in an async function around a promise-returning request, which costs
 * the event loop about twice as much per call: 32 concurrent link/lstat/unlink loops here used
 * 5 to 13 µs of main-thread time per call that way and 2.5 to 5.7 µs through these. A small upload
 * makes thirteen such calls. Errors are the same `ErrnoException`s (`code`, `syscall`, `path`).
 */
import {
  link as linkCallback,
  lstat as lstatCallback,
  open,
  closeSync,
  readdir as readdirCallback,
  readFileSync,
  realpath as realpathCallback,
  rename as renameCallback,
  stat as statCallback,
  unlink as unlinkCallback,
} from 'node:fs'
import { promisify } from 'node:util'

export const link = promisify(linkCallback)
export const rename = promisify(renameCallback)
export const unlink = promisify(unlinkCallback)
export const lstat = promisify(lstatCallback)
export const stat = promisify(statCallback)
/** realpath(3), as `fs/promises` resolves (not the JavaScript walk of `fs.realpath`). */
export const realpath = promisify(realpathCallback.native)

export const readdir = promisify(readdirCallback)

/** open(2) answering the plain descriptor: a FileHandle cannot be closed synchronously. */
export const openDescriptor = promisify(open)

/**
 * A whole small file (an event entry) as text: the open through the thread pool, the read and the
 * close at once on the descriptor (they do not wait for the disk, as for records). `fs.readFile`
 * makes four thread-pool round trips, `fs/promises` a FileHandle besides.
 */
export async function readText(path: string): Promise<string> {
  const fd = await openDescriptor(path, 'r')
  try {
    return readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
}
