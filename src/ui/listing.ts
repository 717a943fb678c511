/** The folder's table: folders first, then files, sorted by name, size or date (either direction). */
import type { Entry } from './api.js'

export type SortKey = 'name' | 'size' | 'modified'
export interface Sort {
  key: SortKey
  descending: boolean
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' })

export function sortEntries(entries: Entry[], sort: Sort): Entry[] {
  const value = (e: Entry): number | string =>
    sort.key === 'name' || e.type === 'directory' ? e.name : sort.key === 'size' ? e.size : Date.parse(e.modified)
  const compare = (a: Entry, b: Entry): number => {
    if (a.type !== b.type) return a.type === 'directory' ? -1 : 1 // folders first, whatever the direction
    const [x, y] = [value(a), value(b)]
    const order = typeof x === 'number' && typeof y === 'number' ? x - y : collator.compare(String(x), String(y))
    return (sort.descending ? -order : order) || collator.compare(a.name, b.name)
  }
  return [...entries].sort(compare)
}
