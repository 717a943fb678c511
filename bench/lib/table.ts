/**
 * The results as a Markdown table (printed, and pasted into docs/benchmarks.md as it is).
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

/** CPU per unit of work: per GiB for transfers, per 1000 requests for request rates. */
function cpu(figure: Figure | undefined, unit: Row['unit']): string {
  if (figure?.cpuMsPerUnit === undefined) return ''
  const ms = Math.round(figure.cpuMsPerUnit).toLocaleString('en-US')
  return unit === 'req/s' ? `${ms} ms/1k req` : `${ms} ms/GiB`
}

const rss = (bytes: number | undefined): string => (bytes === undefined ? '' : `${Math.round(bytes / MiB)} MiB`)

function ratio(row: Row): string {
  if (row.ratio === undefined) return ''
  const text = row.ratio.toFixed(2)
  return row.ratio < 0.8 ? `**${text}**` : text
}

function measurement(row: Row): string {
  return row.peerName ? `${row.name} vs ${row.peerName}` : row.name
}

export function markdownTable(rows: Row[]): string {
  const lines = [
    '| measurement | ours | peer | ours/peer | ours p50 / p99 | peer p50 / p99 | our CPU | peer CPU | our peak RSS | peer peak RSS |',
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
