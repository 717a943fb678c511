/**
 * The parts of one upload on disk, in the upload's folder:
 *
 *   part-<n>            the bytes of part n
 *   part-<n>.json       its record (size, sha256, and the inode of its bytes): a part counts once its
 *                       record names the bytes there, so bytes replaced without their record (a crash
 *                       between the two renames of `putPart`) are never taken for the part
 *   part-<n>.w.<claim>  part n while one writer appends to it ("claimed"), see `Claim`
 *
 * A part is the first `size` bytes of its file. Under its own name the file holds exactly those;
 * while claimed, the writer adds bytes past them. Claiming is a rename (of an existing part) or an
 * exclusive create (of a new one), which succeeds for one writer only, in this process or in another
 * sharing the folder. Releasing links the file back under its own name, which never replaces a part
 * sent again meanwhile.
 */
import { randomBytes } from 'node:crypto'
import { link, lstat, open, readdir, readFile, rename, truncate, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { PartInfo } from '../types.js'
import { isErrno, writeThenRename } from './layout.js'

export const partName = (n: number) => `part-${String(n).padStart(5, '0')}`

/**
 * What a claim's name says, so that whoever finds it after its writer died knows what to do with
 * the bytes the writer had received: the writer's instance, the upload's offset and the part's size
 * when it claimed it, and whether bytes it received may be kept (`k`: an append without a checksum)
 * or must go (`d`: a checksum cannot be verified on a cut body; `r`: a claim taken over to recover it).
 */
export interface Claim {
  file: string
  part: number
  instance: string
  offset: number
  base: number
  keepOnCrash: boolean
  /** Taken over by a process recovering it (whose writer died). */
  recovering?: boolean
}

const CLAIM = /^part-(\d+)\.w\.([0-9a-z]+-[0-9a-f]+)\.(\d+)\.(\d+)\.([kdr])\.[0-9a-f]+$/

export function parseClaim(dir: string, name: string): Claim | null {
  const m = CLAIM.exec(name)
  if (!m) return null
  return {
    file: join(dir, name),
    part: Number(m[1]),
    instance: m[2]!,
    offset: Number(m[3]),
    base: Number(m[4]),
    keepOnCrash: m[5] === 'k',
    recovering: m[5] === 'r',
  }
}

export const claimName = (part: number, claim: Omit<Claim, 'file' | 'part'>) =>
  `${partName(part)}.w.${claim.instance}.${claim.offset}.${claim.base}.${claim.recovering ? 'r' : claim.keepOnCrash ? 'k' : 'd'}.${randomBytes(4).toString('hex')}`

export interface PartFile {
  info: PartInfo
  /** Where its bytes are: the part's own name, or a claimed one. */
  file: string
}

interface PartRecord extends PartInfo {
  /** Inode of the part's bytes (absent in records of earlier versions: then the size alone is checked). */
  ino?: number
}

/** Received parts whose bytes are there for their record, by number; and the claims found. */
export async function readPartFiles(dir: string): Promise<{ parts: PartFile[]; claims: Claim[] }> {
  const names = await readdir(dir)
  const claims = names.map((n) => parseClaim(dir, n)).filter((c): c is Claim => c !== null)
  const parts: PartFile[] = []
  for (const name of names) {
    if (!name.endsWith('.json') || !name.startsWith('part-')) continue
    const record = await readRecord(join(dir, name))
    const file = record && (await bytesOf(dir, record, claims))
    if (file) parts.push({ info: { part: record.part, size: record.size, sha256: record.sha256 }, file })
  }
  return { parts: parts.sort((a, b) => a.info.part - b.info.part), claims }
}

/** Whether part `part`'s record is `expected`, naming the inode `ino` (where it names one); false when it has none. */
export async function isRecordOf(dir: string, part: number, expected: PartInfo | null, ino: number): Promise<boolean> {
  const record = await readRecord(join(dir, `${partName(part)}.json`))
  if (!record || !expected) return record === expected
  return record.size === expected.size && record.sha256 === expected.sha256 && (record.ino === undefined || record.ino === ino)
}

async function readRecord(file: string): Promise<PartRecord | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as PartRecord
  } catch (e) {
    if (isErrno(e, 'ENOENT') || e instanceof SyntaxError) return null
    throw e
  }
}

/** The file holding `record`'s bytes: under the part's own name, or claimed (holding at least them). */
async function bytesOf(dir: string, record: PartRecord, claims: Claim[]): Promise<string | null> {
  const candidates = [join(dir, partName(record.part)), ...claims.filter((c) => c.part === record.part).map((c) => c.file)]
  for (const [i, file] of candidates.entries()) {
    const stats = await lstat(file).catch(() => null)
    if (!stats || (record.ino !== undefined && stats.ino !== record.ino)) continue
    if (i === 0 ? stats.size === record.size : stats.size >= record.size) return file
  }
  return null
}

/** Writes a part's record through `tmp` and a rename, so a crash never leaves half of one. */
export async function writePartRecord(dir: string, info: PartInfo, ino: number, tmp: string): Promise<void> {
  const record: PartRecord = { ...info, ino }
  await writeThenRename(tmp, join(dir, `${partName(info.part)}.json`), JSON.stringify(record))
}

export async function removePartRecord(dir: string, part: number): Promise<void> {
  await unlink(join(dir, `${partName(part)}.json`)).catch(() => {})
}

/** Takes part `part` for this writer alone; null when it is not under its own name (claimed, or gone). */
export async function claimPart(dir: string, part: number, claim: Omit<Claim, 'file' | 'part'>): Promise<string | null> {
  const claimed = join(dir, claimName(part, claim))
  try {
    await rename(join(dir, partName(part)), claimed)
    return claimed
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null
    throw e
  }
}

/** Creates a new, empty part `part` claimed by this writer (an append that starts a part). */
export async function newClaim(dir: string, part: number, claim: Omit<Claim, 'file' | 'part'>): Promise<string> {
  const claimed = join(dir, claimName(part, claim))
  await (await open(claimed, 'wx')).close()
  return claimed
}

/**
 * Gives a claimed part back under its own name, cut to `size` bytes. When it cannot be cut, or another
 * file took its name meanwhile, it is dropped: it is never put back longer than its record.
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

/** Drops a claimed new part that got no bytes (nothing of it was committed). */
export async function dropClaim(claimed: string): Promise<void> {
  await unlink(claimed).catch(() => {})
}
