/**
 * One quota bucket's state in the ledger (ledger.ts), and the pure steps that change it. Every step
 * runs inside one atomic update of the bucket's shared record, so whatever it decides holds across
 * processes.
 *
 * A bucket (the files under one prefix) holds `stored`, what the files there use as far as the
 * ledger knows, and an entry per change under way:
 *
 * - a change (an upload, a part, a move, a delete, an upload in parts for its whole life) holds
 *   `reserved`, the most it may add, and `credit`, what it will take away (the file it replaces, the
 *   files it moves out or deletes), measured after it was registered. Usage is `stored` plus what
 *   each change may add beyond its credit; a change is admitted only if that stays within the limit.
 *   When it ends, `stored` moves by what it added less its credit.
 * - a count of the store (`recount`) holds what changes ending meanwhile added, so that the count is
 *   never short of one the walk missed.
 *
 * The credit is exact only if nothing else touched the same paths meanwhile (a replace of the same
 * file, a delete of its folder). So two changes whose paths overlap are both marked `contended`: a
 * contended change counts its whole reservation while it runs, and when it ends it adds what it
 * added and takes nothing away. The bucket then counts more than it holds (never less), and is
 * marked for a recount (`Verdict.suspect`), which makes it exact again. A change that overlaps a
 * count (`recounted`) keeps its credit while it runs (the count sees the file it replaces or the one
 * it wrote, and usage is at least either), but ends the same way: the count may have seen its file.
 */
import { isWithin } from '../paths.js'

export interface Amount {
  bytes: number
  files: number
}

export const NOTHING: Amount = { bytes: 0, files: 0 }

export interface ChangeEntry {
  kind: 'change'
  /** `p:<process>` (a request of a process) or `u:<upload id>` (an upload in parts, for its whole life). */
  owner: string
  /** The paths it changes: files, or folders with everything under them. */
  scopes: string[]
  reserved: Amount
  credit: Amount
  contended?: true
  /** A count of the bucket ran while it did (see above). */
  recounted?: true
  /** An upload whose size was declared: its reservation holds the whole file, parts do not add to it. */
  declared?: true
  since: number
}

export interface RecountEntry {
  kind: 'recount'
  owner: string
  scopes: string[]
  /** What changes that ended during the count added. */
  added: Amount
  /** A change ended during the count: its result may count some bytes twice. */
  disturbed?: true
  since: number
}

export type Entry = ChangeEntry | RecountEntry

export interface BucketState {
  /** `stored` comes from a count of the store (a new bucket is counted before it is used). */
  counted: boolean
  stored: Amount
  entries: Record<string, Entry>
  /** When the last count ended, and how long its walk took (ms). */
  countedAt?: number
  countMs?: number
}

export const newBucket = (): BucketState => ({ counted: false, stored: { ...NOTHING }, entries: {} })

export interface Limits {
  bytes?: number
  files?: number
}

/** What a refused change is told: the limit, the usage, and what it asked for. */
export interface Refusal {
  limit: Limits
  usage: Amount
  requested: Amount
}

export class QuotaRefusal extends Error {
  constructor(readonly refusal: Refusal) {
    super('quota exceeded')
  }
}

const add = (a: Amount, b: Amount): Amount => ({ bytes: a.bytes + b.bytes, files: a.files + b.files })
const minus = (a: Amount, b: Amount): Amount => ({ bytes: a.bytes - b.bytes, files: a.files - b.files })
const atLeastZero = (a: Amount): Amount => ({ bytes: Math.max(0, a.bytes), files: Math.max(0, a.files) })

/** What a change counts while it runs. */
export const counting = (e: ChangeEntry): Amount => (e.contended ? e.reserved : atLeastZero(minus(e.reserved, e.credit)))

/** What the bucket's files use, with what changes under way may add. */
export function usageOf(state: BucketState): { stored: Amount; reserved: Amount; usage: Amount } {
  let reserved = { ...NOTHING }
  for (const e of Object.values(state.entries)) if (e.kind === 'change') reserved = add(reserved, counting(e))
  return { stored: state.stored, reserved, usage: add(state.stored, reserved) }
}

const overlap = (a: string[], b: string[]) => a.some((x) => b.some((y) => isWithin(x, y) || isWithin(y, x)))

/** Throws `QuotaRefusal` when `after` goes over `limits` in a dimension `grew` grows. */
function admit(before: Amount, after: Amount, grew: Amount, limits: Limits): void {
  const over =
    (grew.bytes > 0 && limits.bytes !== undefined && after.bytes > limits.bytes) ||
    (grew.files > 0 && limits.files !== undefined && after.files > limits.files)
  if (over) throw new QuotaRefusal({ limit: limits, usage: before, requested: grew })
}

const copy = (state: BucketState): BucketState => ({ ...state, entries: { ...state.entries } })

/**
 * Adds an entry (a change, or a count of the store). Entries whose paths overlap it become
 * contended, and so does it. A change is admitted only within `limits` (`QuotaRefusal`). Adding
 * an entry that exists already changes nothing.
 */
export function addEntry(state: BucketState, id: string, entry: Entry, limits: Limits): BucketState {
  if (state.entries[id]) return state
  const next = copy(state)
  let mine: Entry = { ...entry }
  for (const [otherId, other] of Object.entries(state.entries)) {
    if (!overlap(other.scopes, entry.scopes)) continue
    const mark = other.kind === 'recount' || mine.kind === 'recount' ? { recounted: true as const } : { contended: true as const }
    if (other.kind === 'change') next.entries[otherId] = { ...other, ...mark }
    if (mine.kind === 'change') mine = { ...mine, ...mark }
  }
  next.entries[id] = mine
  if (mine.kind === 'change') {
    const before = usageOf(state).usage
    admit(before, usageOf(next).usage, counting(mine), limits)
  }
  return next
}

/**
 * Sets a change's reservation and credit (measured once it was registered). A change that may then
 * add more than it did is admitted only within `limits`. Undefined when the entry is gone (it was
 * reaped as its process was counted dead).
 */
export function setAmounts(
  state: BucketState,
  id: string,
  amounts: { reserved?: Amount; credit?: Amount; declared?: true },
  limits: Limits,
): BucketState | undefined {
  const entry = state.entries[id]
  if (entry?.kind !== 'change') return undefined
  const next = copy(state)
  const changed: ChangeEntry = {
    ...entry,
    ...(amounts.reserved ? { reserved: amounts.reserved } : {}),
    ...(amounts.credit ? { credit: amounts.credit } : {}),
    ...(amounts.declared ? { declared: true as const } : {}),
  }
  next.entries[id] = changed
  const grew = atLeastZero(minus(counting(changed), counting(entry)))
  admit(usageOf(state).usage, usageOf(next).usage, grew, limits)
  return next
}

/**
 * Grows a change's reservation by at least `need` bytes (`QuotaRefusal` when that does not fit) and
 * up to `want`, taking at most a quarter of the room left beyond `need`, so that bodies of unknown
 * length racing near the limit leave each other room. Returns the state and the bytes granted.
 */
export function growEntry(state: BucketState, id: string, need: number, want: number, limits: Limits): { state: BucketState; granted: number } | undefined {
  const entry = state.entries[id]
  if (entry?.kind !== 'change') return undefined
  const { usage } = usageOf(state)
  const spare = limits.bytes === undefined ? want - need : Math.floor(Math.max(0, limits.bytes - usage.bytes - need) / 4)
  const granted = need + Math.max(0, Math.min(want - need, spare))
  const next = setAmounts(state, id, { reserved: { ...entry.reserved, bytes: entry.reserved.bytes + granted } }, limits)
  return next && { state: next, granted }
}

export interface Verdict {
  state: BucketState
  /** The bucket may count more than it holds: recount it. */
  suspect: boolean
}

/**
 * Ends a change: `added` is what it added to the bucket (the file it wrote, the files it moved in),
 * `exact` says whether its credit was taken away as measured (false, or false for that credit: the
 * store answered otherwise, e.g. a file replaced where none was measured). Uncontended,
 * `stored` moves by `added` less the credit; otherwise by `added` alone, and the bucket is suspect.
 * A change already gone (reaped, its reservation counted as added) adds `added` again: counting
 * twice is safe, missing a write is not.
 */
export function endChange(state: BucketState, id: string, added: Amount, exact: boolean | ((credit: Amount) => boolean) = true): Verdict {
  const entry = state.entries[id]
  const next = copy(state)
  delete next.entries[id]
  for (const [otherId, other] of Object.entries(next.entries)) {
    if (other.kind === 'recount') next.entries[otherId] = { ...other, added: add(other.added, added), disturbed: true }
  }
  if (entry?.kind === 'change' && !entry.contended && !entry.recounted && (typeof exact === 'function' ? exact(entry.credit) : exact)) {
    next.stored = add(state.stored, minus(added, entry.credit))
    return { state: next, suspect: false }
  }
  next.stored = add(state.stored, added)
  return { state: next, suspect: true }
}

/** Whether a count of the bucket is under way. */
export const countUnderWay = (state: BucketState): boolean => Object.values(state.entries).some((e) => e.kind === 'recount')

/**
 * Gives the change `from`'s entry to the change `to` (of `owner`), as it stands: an upload created
 * under a request's reservation takes it over. Undefined when `from` is gone (reaped) or `to` exists.
 */
export function handOver(state: BucketState, from: string, to: string, owner: string): BucketState | undefined {
  const entry = state.entries[from]
  if (entry?.kind !== 'change' || state.entries[to]) return undefined
  const next = copy(state)
  delete next.entries[from]
  next.entries[to] = { ...entry, owner }
  return next
}

/** Gives a change up: nothing it reserved was used. Suspect when it may have changed something part-way. */
export function dropChange(state: BucketState, id: string): BucketState | undefined {
  if (!state.entries[id]) return undefined
  const next = copy(state)
  delete next.entries[id]
  return next
}

/**
 * Ends the count `id` with what the walk found: `stored` becomes that plus what changes ending
 * meanwhile added. Undefined when the count was reaped meanwhile (its process counted dead).
 */
export function endRecount(state: BucketState, id: string, walked: Amount, now: number, walkMs: number): Verdict | undefined {
  const entry = state.entries[id]
  if (entry?.kind !== 'recount') return undefined
  const next = copy(state)
  delete next.entries[id]
  next.stored = add(walked, entry.added)
  next.counted = true
  next.countedAt = now
  next.countMs = walkMs
  return { state: next, suspect: entry.disturbed === true }
}

/**
 * Removes the entries of owners that are gone (a dead process, an upload that ended without being
 * accounted): each change counts as having added all it reserved and taken nothing away, since it
 * may have been written just before its owner died; the bucket is then suspect.
 */
export function reap(state: BucketState, gone: (owner: string) => boolean): Verdict | undefined {
  const dead = Object.entries(state.entries).filter(([, e]) => gone(e.owner))
  if (dead.length === 0) return undefined
  const next = copy(state)
  for (const [id, entry] of dead) {
    delete next.entries[id]
    if (entry.kind === 'change') next.stored = add(next.stored, entry.reserved)
  }
  return { state: next, suspect: true }
}
