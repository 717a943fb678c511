/**
 * `npm run bench:syscalls`: what the file system alone charges for a 4 KiB upload, by on-disk
 * format, with no HTTP, no JavaScript framework and no thread pool in the way.
 *
 * Each sequence below makes the system calls one upload makes (as `strace -f` of one PUT shows
 * them), synchronously, one upload after another, over 1024 names so that most uploads replace a
 * file (as the bench's PUT rows do). It prints the CPU the process used per upload (almost all of
 * it system time: the kernel's own work) and each call's mean time, for:
 *
 *   - the disk store's commit (docs/storage.md "The commit protocol"): a temporary file, the
 *     cross-process lock, the path checks, the holder link and the record, the rename, and the
 *     release of the replaced version (its record and holder), then the lock again;
 *   - a temporary file and a rename: nginx's WebDAV PUT, atomic, one inode per upload;
 *   - the file truncated and written in place: the bench's bare node:http peer, not atomic.
 *
 * What it showed here: on ext4 with a journal, creating a file costs about 12 µs and the store's
 * commit about 110 µs of kernel time (a temporary file and a rename: 55 µs); on ext4 without a
 * journal (this VM's root file system) the kernel skips every inode freed in the last one to six
 * minutes when it makes a new one, so under a stream of replacing uploads each create climbs to
 * hundreds of µs, and a format that makes two inodes per upload pays it twice (docs/benchmarks.md).
 * The header says which file system it ran on.
 *
 * Rounds alternate between the sequences, so that a busier moment of the machine falls on all.
 * Settings: BENCH_DIR (working folder, as for `npm run bench`), BENCH_SYSCALL_UPLOADS (per round,
 * default 5000), BENCH_RUNS (rounds, default 3).
 */
import { closeSync, fstatSync, linkSync, lstatSync, mkdirSync, openSync, realpathSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileSystem } from './lib/machine.js'
import { readSettings } from './lib/settings.js'

const NAMES = 1024
/** As the store's records (file-records.ts); made before the round, as a store in use has them. */
const SHARDS = 4096
const settings = readSettings()
const uploads = Number(process.env.BENCH_SYSCALL_UPLOADS ?? 5000)
const root = join(settings.dir, 'commit-syscalls')
const body = Buffer.alloc(settings.smallBytes, 0x61)
const record = JSON.stringify({ v: 2, sha256: 'a'.repeat(64), size: body.length, mtimeMs: 0, contentType: 'application/octet-stream', metadata: {}, created: new Date(0).toISOString() })

/** Mean microseconds per call, by call, over the current round. */
let calls = new Map<string, { n: number; ms: number }>()
function timed<T>(name: string, call: () => T): T {
  const start = performance.now()
  try {
    return call()
  } finally {
    const entry = calls.get(name) ?? { n: 0, ms: 0 }
    entry.n++
    entry.ms += performance.now() - start
    calls.set(name, entry)
  }
}
const attempt = (call: () => void) => {
  try {
    call()
  } catch {
    // a replaced version already released: as the store's release, nothing to do
  }
}

interface Sequence {
  name: string
  upload(i: number, dir: string): void
}

const writeTemporary = (tmp: string): number => {
  const fd = timed('open (create)', () => openSync(tmp, 'wx'))
  timed('write', () => writeSync(fd, body))
  const { ino } = fstatSync(fd)
  timed('close', () => closeSync(fd))
  return ino
}

const sequences: Sequence[] = [
  {
    name: 'disk store commit (record + holder + lock)',
    upload(i, dir) {
      const tmp = join(dir, 'tmp', String(i))
      const ino = writeTemporary(tmp)
      const lock = join(dir, 'locks', String(i % NAMES))
      timed('link (lock)', () => linkSync(join(dir, 'instance'), lock))
      const target = join(dir, 'data', String(i % NAMES))
      timed('realpath', () => realpathSync.native(join(dir, 'data')))
      let replaced: number | undefined
      attempt(() => (replaced = timed('lstat', () => lstatSync(target)).ino))
      const shard = join(dir, 'inodes', String(ino % SHARDS))
      timed('link (holder)', () => linkSync(tmp, join(shard, String(ino))))
      const fd = timed('open (record)', () => openSync(join(shard, `${ino}.json`), 'w'))
      timed('write', () => writeSync(fd, record))
      timed('close', () => closeSync(fd))
      timed('rename', () => renameSync(tmp, target))
      if (replaced !== undefined) {
        const old = join(dir, 'inodes', String(replaced % SHARDS), String(replaced))
        attempt(() => timed('lstat', () => lstatSync(old)))
        attempt(() => timed('unlink (record)', () => unlinkSync(`${old}.json`)))
        attempt(() => timed('unlink (holder, frees the inode)', () => unlinkSync(old)))
      }
      timed('unlink (lock)', () => unlinkSync(lock))
    },
  },
  {
    name: 'temporary file + rename (nginx WebDAV)',
    upload(i, dir) {
      const tmp = join(dir, 'tmp', String(i))
      writeTemporary(tmp)
      timed('rename (frees the replaced inode)', () => renameSync(tmp, join(dir, 'data', String(i % NAMES))))
    },
  },
  {
    name: 'truncate and write in place (bare node:http)',
    upload(i, dir) {
      const fd = timed('open (truncate)', () => openSync(join(dir, 'data', String(i % NAMES)), 'w'))
      timed('write', () => writeSync(fd, body))
      timed('close', () => closeSync(fd))
    },
  },
]

function round(sequence: Sequence, index: number): void {
  const dir = join(root, String(index))
  rmSync(dir, { recursive: true, force: true })
  for (const sub of ['tmp', 'locks', 'data', 'inodes']) mkdirSync(join(dir, sub), { recursive: true })
  for (let shard = 0; shard < SHARDS; shard++) mkdirSync(join(dir, 'inodes', String(shard)))
  writeFileSync(join(dir, 'instance'), '')
  calls = new Map()
  const cpuBefore = process.cpuUsage()
  const start = performance.now()
  for (let i = 0; i < uploads; i++) sequence.upload(i, dir)
  const wallMs = performance.now() - start
  const cpu = process.cpuUsage(cpuBefore)
  rmSync(dir, { recursive: true, force: true })
  const perUpload = (us: number) => `${Math.round(us / uploads)} µs`
  console.log(
    `${sequence.name}: ${perUpload(cpu.user + cpu.system)} CPU per upload (${perUpload(cpu.system)} system), ` +
      `${Math.round((uploads * 1000) / wallMs)} uploads/s on one thread`,
  )
  for (const [name, { n, ms }] of calls) console.log(`    ${name.padEnd(34)} ${((ms * 1000) / n).toFixed(1).padStart(6)} µs x ${(n / uploads).toFixed(2)}`)
}

mkdirSync(root, { recursive: true })
console.log(`${uploads} uploads of ${settings.smallBytes} bytes per round over ${NAMES} names, in ${root} (${fileSystem(root)})`)
for (let r = 0; r < settings.runs; r++) {
  console.log(`round ${r + 1} of ${settings.runs}`)
  sequences.forEach((sequence, index) => round(sequence, index))
}
rmSync(root, { recursive: true, force: true })
