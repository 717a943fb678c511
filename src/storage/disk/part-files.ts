/**
 * The parts of one upload on disk, in the upload's folder:
 *
 *   part-<n>           the bytes of part n
 *   part-<n>.json      its record (size, sha256), written last: a part counts once this exists
 *   part-<n>.w<id>     part n while a writer extends it in place (tus appends), claimed by renaming
 *
 * A part is the first `size` bytes of its file. Under its own name the file holds exactly those;
 * while claimed, the writer adds bytes past them, and a writer that died leaves it claimed for good
 * (it is still read from there, and the next append writes a new part instead).
 *
 * Claiming is a rename, which succeeds for one writer only, in this process or in another sharing
 * the folder, so two writers never write into one file. Releasing links the file back under its own
 * name, which never replaces a part sent again meanwhile (`putPart` renames a new file there).
 */
import { link, readdir, readFile, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { PartInfo } from '../types.js'
import { isErrno } from './layout.js'

export const partName = (n: number) => `part-${String(n).padStart(5, '0')}`

export interface PartFile {
  info: PartInfo
  /** Where its bytes are: the part's own name, or a claimed one. */
  file: string
}

/** Received parts whose bytes are there for their record, by number. */
export async function readPartFiles(dir: string): Promise<PartFile[]> {
  const names = new Set(await readdir(dir))
  const claims = new Map<string, string>() // part name -> its claimed name
  for (const name of names) {
    const at = name.indexOf('.w')
    if (name.startsWith('part-') && at > 0) claims.set(name.slice(0, at), name)
  }
  const parts: PartFile[] = []
  for (const name of names) {
    if (!name.endsWith('.json') || !name.startsWith('part-')) continue
    try {
      const info = JSON.parse(await readFile(join(dir, name), 'utf8')) as PartInfo
      const own = partName(info.part)
      const claimed = claims.get(own)
      if (names.has(own) && (await stat(join(dir, own))).size === info.size) {
        parts.push({ info, file: join(dir, own) })
      } else if (claimed && (await stat(join(dir, claimed))).size >= info.size) {
        parts.push({ info, file: join(dir, claimed) })
      }
    } catch (e) {
      if (!isErrno(e, 'ENOENT') && !(e instanceof SyntaxError)) throw e
    }
  }
  return parts.sort((a, b) => a.info.part - b.info.part)
}

/** Writes a part's record through `tmp` and a rename, so a crash never leaves half of one. */
export async function writePartRecord(dir: string, info: PartInfo, tmp: string): Promise<void> {
  await writeFile(tmp, JSON.stringify(info))
  await rename(tmp, join(dir, `${partName(info.part)}.json`))
}

/** Takes part `part` for this writer alone; null when it is not under its own name (claimed, or gone). */
export async function claimPart(dir: string, part: number): Promise<string | null> {
  const claimed = join(dir, `${partName(part)}.w${randomUUID()}`)
  try {
    await rename(join(dir, partName(part)), claimed)
    return claimed
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null
    throw e
  }
}

/**
 * Gives a claimed part back, cut to `size` bytes. When it cannot be cut, or another file took its
 * name meanwhile, it stays claimed (or is dropped): it is never put back longer than its record.
 */
export async function releasePart(dir: string, part: number, claimed: string, size: number): Promise<void> {
  try {
    await truncate(claimed, size)
    await link(claimed, join(dir, partName(part)))
    await unlink(claimed)
  } catch (e) {
    if (isErrno(e, 'EEXIST')) await unlink(claimed).catch(() => {})
    // ENOENT: the upload was completed or aborted meanwhile; anything else leaves the claim as it is
  }
}
