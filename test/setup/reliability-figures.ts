/**
 * vitest globalSetup of the reliability suite: a file where each audit appends its figures
 * (RELIABILITY_FIGURES), and the summary table printed from it when the run ends.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const COLUMNS = [
  ['readsAudited', 'reads audited'],
  ['mismatches', 'mismatches'],
  ['crashesSurvived', 'crashes survived'],
  ['leftoversFound', 'leftovers found'],
  ['leftoverBytes', 'leftover bytes'],
  ['notCut', 'stalled, not cut'],
  ['peakRssMiB', 'peak RSS (MiB)'],
] as const

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'filestorage-reliability-'))
  const file = join(dir, 'figures.jsonl')
  process.env.RELIABILITY_FIGURES = file
  return () => {
    let rows: Record<string, unknown>[] = []
    try {
      rows = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    } catch {
      // no audit reported anything
    }
    rmSync(dir, { recursive: true, force: true })
    const header = ['audit', ...COLUMNS.map(([, title]) => title)]
    const table = rows.map((r) => [String(r.suite), ...COLUMNS.map(([key]) => (r[key] === undefined ? '-' : String(r[key])))])
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)))
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
    console.log(`\nreliability summary\n${line(header)}\n| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |\n${table.map(line).join('\n')}\n`)
  }
}
