/**
 * The disk store's cache of small files: an entry is served only while its path still names the
 * very file it was read from. First the cache itself on real files; then adversarially through the
 * driver: files cached by one store instance are changed in every way a path can change (another
 * instance on the folder replacing, deleting, moving; a hand editing in place, linking, swapping in a
 * symbolic link), and the very next read sees the change.
 */
import { randomBytes } from 'node:crypto'
import { lstatSync, statSync } from 'node:fs'
import { appendFile, link, mkdtemp, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DiskDriver } from '../../src/storage/disk/disk-driver.js'
import { SETTLED_MS, SMALL_FILE_BYTES, SmallFileCache } from '../../src/storage/disk/small-file-cache.js'
import type { StoredFile } from '../../src/storage/index.js'
import { streamOf } from '../helpers/streams.js'

const dirs: string[] = []
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'filestorage-small-files-'))
  dirs.push(dir)
  return dir
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
})

const described = (path: string, size: number) => ({ type: 'file', path, name: path, size, metadata: {} }) as unknown as StoredFile

/** Puts `bytes` at `abs` and holds them as if read long after their last change. */
async function held(cache: SmallFileCache, abs: string, bytes: Buffer): Promise<void> {
  await writeFile(abs, bytes)
  const stats = statSync(abs)
  cache.set(abs, stats, stats.ctimeMs + SETTLED_MS, described(abs, bytes.length), bytes)
}

describe('SmallFileCache', () => {
  it('serves an entry while the path names the same file, and drops it once the path changes in any way', async () => {
    const dir = await tempDir()
    const cache = new SmallFileCache(1024 * 1024)
    const abs = join(dir, 'f')
    const content = randomBytes(100)

    await held(cache, abs, content)
    expect(cache.get(abs)?.bytes).toBe(content)

    const replacement = join(dir, 'new')
    await writeFile(replacement, content) // same bytes, same size: only the inode differs
    await rename(replacement, abs)
    expect(cache.get(abs)).toBeUndefined()

    await held(cache, abs, content)
    await unlink(abs)
    expect(cache.get(abs)).toBeUndefined()
    expect(cache.size).toBe(0)

    await held(cache, abs, content)
    await sleep(50) // past the clock tick of the write: the edit below gets a later ctime
    await writeFile(abs, randomBytes(100)) // edited in place, same size
    expect(cache.get(abs)).toBeUndefined()

    await held(cache, abs, content)
    await sleep(50)
    await link(abs, join(dir, 'another-name')) // the same bytes, but a link changes the ctime
    expect(cache.get(abs)).toBeUndefined()

    await held(cache, abs, content)
    await rename(abs, join(dir, 'moved'))
    await mkdtemp(join(dir, 'x')) // something else happens in the folder
    await symlink(join(dir, 'moved'), abs) // the path now leads, through a link, to the same inode
    expect(cache.get(abs)).toBeUndefined()
  })

  it('holds only whole small files whose last change is old enough to be told apart from an edit', async () => {
    const dir = await tempDir()
    const cache = new SmallFileCache(1024 * 1024)
    const abs = join(dir, 'f')
    const content = randomBytes(100)
    await writeFile(abs, content)
    const stats = statSync(abs)

    cache.set(abs, stats, stats.ctimeMs + SETTLED_MS - 1, described(abs, 100), content) // changed too recently
    expect(cache.get(abs)).toBeUndefined()
    cache.set(abs, stats, stats.ctimeMs + SETTLED_MS, described(abs, 100), content.subarray(0, 50)) // part of it
    expect(cache.get(abs)).toBeUndefined()

    const large = join(dir, 'large')
    await writeFile(large, randomBytes(SMALL_FILE_BYTES + 1))
    const largeStats = statSync(large)
    cache.set(large, largeStats, largeStats.ctimeMs + SETTLED_MS, described(large, largeStats.size), randomBytes(SMALL_FILE_BYTES + 1))
    expect(cache.get(large)).toBeUndefined()

    const off = new SmallFileCache(0)
    off.set(abs, stats, stats.ctimeMs + SETTLED_MS, described(abs, 100), content)
    expect(off.get(abs)).toBeUndefined()
  })

  it('drops an entry left unused for its idle time, and keeps one in use', async () => {
    const dir = await tempDir()
    const idleMs = 600
    const cache = new SmallFileCache(1024 * 1024, idleMs)
    const [idle, used] = [join(dir, 'idle'), join(dir, 'used')]
    await held(cache, idle, randomBytes(10))
    const since = performance.now()
    await held(cache, used, randomBytes(10))
    let lastUse = performance.now()
    // Used well within the idle time each time, unless a loaded machine slept much longer than asked.
    let steady = true
    while (performance.now() - since < idleMs * 1.5) {
      await sleep(100)
      steady &&= performance.now() - lastUse < idleMs / 2
      const entry = cache.get(used)
      if (steady) expect(entry).toBeDefined()
      lastUse = performance.now()
    }
    expect(cache.get(idle)).toBeUndefined()
  })

  it('keeps within its byte budget, dropping the least recently used first', async () => {
    const dir = await tempDir()
    const cache = new SmallFileCache(4 * (10_000 + 1024))
    const paths = Array.from({ length: 6 }, (_, i) => join(dir, `f${i}`))
    for (const abs of paths.slice(0, 4)) await held(cache, abs, randomBytes(10_000))
    cache.get(paths[0]!) // the oldest is now the most recently used
    await held(cache, paths[4]!, randomBytes(10_000))
    expect(cache.get(paths[1]!)).toBeUndefined()
    expect([0, 2, 3, 4].every((i) => cache.get(paths[i]!) !== undefined)).toBe(true)
    expect(cache.size).toBeLessThanOrEqual(4 * (10_000 + 1024))
  })
})

describe('the disk store reading small files from memory', () => {
  let root: string
  let reader: DiskDriver
  let writer: DiskDriver // another instance on the same folder: what another process would do
  beforeEach(async () => {
    root = await tempDir()
    reader = await DiskDriver.open({ dir: root })
    writer = await DiskDriver.open({ dir: root })
  })
  afterEach(async () => {
    await reader.close()
    await writer.close()
  })

  const text = async (read: Promise<{ body: ReadableStream<Uint8Array> }>) => new Response((await read).body).text()

  it('sees at once every change another process or a hand makes to a file it holds', async () => {
    const names = ['replaced', 'deleted', 'moved-away', 'moved-onto', 'edited', 'linked-over', 'folder/renamed']
    for (const name of names) await writer.put(name, streamOf(`first ${name}`), { contentType: 'text/plain', metadata: { v: 1 } })
    await writer.put('other', streamOf('the other file'), { contentType: 'text/csv', metadata: { v: 'other' } })
    await sleep(SETTLED_MS + 100)
    for (const name of [...names, 'other']) await text(reader.read(name)) // read once: held from now on
    for (const name of names) {
      // Held: two reads hand out the very same bytes.
      expect((await reader.read(name)).bytes).toBe((await reader.read(name)).bytes)
      expect(await text(reader.read(name))).toBe(`first ${name}`)
      expect((await reader.stat(name)).metadata).toEqual({ v: 1 })
    }

    await writer.put('replaced', streamOf('second replaced'), { contentType: 'application/json', metadata: { v: 2 } })
    const replaced = await reader.read('replaced')
    expect(await new Response(replaced.body).text()).toBe('second replaced')
    expect(replaced.file).toMatchObject({ contentType: 'application/json', metadata: { v: 2 } })
    expect((await reader.stat('replaced')).metadata).toEqual({ v: 2 })

    await writer.delete('deleted')
    await expect(reader.read('deleted')).rejects.toMatchObject({ code: 'not_found' })
    await expect(reader.lookup('deleted')).resolves.toBeNull()

    await writer.move('moved-away', 'elsewhere')
    await expect(reader.read('moved-away')).rejects.toMatchObject({ code: 'not_found' })
    expect(await text(reader.read('elsewhere'))).toBe('first moved-away')

    await writer.move('other', 'moved-onto', { overwrite: true })
    const movedOnto = await reader.read('moved-onto')
    expect(await new Response(movedOnto.body).text()).toBe('the other file')
    expect(movedOnto.file).toMatchObject({ path: 'moved-onto', contentType: 'text/csv', metadata: { v: 'other' } })

    await writer.move('folder', 'renamed-folder')
    await expect(reader.read('folder/renamed')).rejects.toMatchObject({ code: 'not_found' })

    // By hand: appended to in place (same inode), and the path made a link to a file outside.
    await appendFile(join(root, 'edited'), ' and more')
    expect(await text(reader.read('edited'))).toBe('first edited and more')
    const outside = join(await tempDir(), 'secret')
    await writeFile(outside, 'outside the store')
    await unlink(join(root, 'linked-over'))
    await symlink(outside, join(root, 'linked-over'))
    await expect(reader.read('linked-over')).rejects.toMatchObject({ code: 'forbidden' })
    expect(lstatSync(join(root, 'linked-over')).isSymbolicLink()).toBe(true)
  })

  it('answers ranges of a file it holds from its bytes, cut to the file', async () => {
    await writer.put('r', streamOf('0123456789'))
    await sleep(SETTLED_MS + 100)
    const whole = (await reader.read('r')).bytes
    expect((await reader.read('r')).bytes).toBe(whole)
    expect((await reader.read('r', { start: 2, end: 4 })).bytes?.buffer).toBe(whole?.buffer) // a view of the bytes held
    expect(await text(reader.read('r', { start: 2, end: 4 }))).toBe('234')
    expect(await text(reader.read('r', { start: 8, end: 100 }))).toBe('89')
  })
})
