/**
 * The results as a Markdown table (printed, and pasted into the docs as it is). The "measured"
 * columns are our service's, except in rows that name another server before "vs" (section 2 sets
 * every server against the SeaweedFS filer).
 */
import type { Figure, Row } from './results.js'
import { MiB } from './stats.js'

function value(figure: Figure | undefined, unit: Row['unit']): string {
  if (!figure) return '—'
  const v = figure.median
  const text = v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1)
  const errors = figure.errors ? ` (${figure.errors} errors)` : ''
  return `${text} ${unit}${errors}`
}

function latency(figure: Figure | undefined): string {
  if (figure?.p50Ms === undefined || figure.p99Ms === undefined) return ''
  return `${figure.p50Ms.toFixed(2)} / ${figure.p99Ms.toFixed(2)} ms`
}

/** CPU per unit of work: per GiB for transfers, per request for request rates (ms per 1000 = µs per one). */
function cpu(figure: Figure | undefined, unit: Row['unit']): string {
  if (figure?.cpuMsPerUnit === undefined) return ''
  const amount = Math.round(figure.cpuMsPerUnit).toLocaleString('en-US')
  return unit === 'req/s' ? `${amount} µs/req` : `${amount} ms/GiB`
}

const rss = (bytes: number | undefined): string => (bytes === undefined ? '' : `${Math.round(bytes / MiB)} MiB`)

/** Bold when below the row's target, or below 0.8 for a row of ours without one. */
function ratio(row: Row): string {
  if (row.ratio === undefined) return ''
  const text = row.ratio.toFixed(2)
  const below = !row.reference && row.ratio < (row.target ?? 0.8)
  const target = row.target === undefined ? '' : ` (target ${row.target.toFixed(2).replace(/0$/, '')})`
  return below ? `**${text}**${target}` : `${text}${target}`
}

function measurement(row: Row): string {
  return row.peerName ? `${row.name} vs ${row.peerName}` : row.name
}

export function markdownTable(rows: Row[]): string {
  const lines = [
    '| measurement | measured | peer | measured/peer | p50 / p99 | peer p50 / p99 | CPU | peer CPU | peak RSS | peer peak RSS |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  let section = ''
  for (const row of rows) {
    if (row.section !== section) {
      section = row.section
      lines.push(`| **${section}** | | | | | | | | | |`)
    }
    const ours = row.notAvailable ? `not available: ${row.notAvailable}` : value(row.ours, row.unit)
    lines.push(
      `| ${measurement(row)} | ${ours} | ${value(row.peer, row.unit)} | ${ratio(row)} | ${latency(row.ours)} | ` +
        `${latency(row.peer)} | ${cpu(row.ours, row.unit)} | ${cpu(row.peer, row.unit)} | ` +
        `${rss(row.oursPeakRss)} | ${rss(row.peerPeakRss)} |`,
    )
  }
  return lines.join('\n')
}
