/**
 * Reading /metrics as Prometheus reads it: the Prometheus project's own text-format parser (the
 * Python `prometheus_client.parser`, installed in the test virtual environment by
 * `scripts/test-services.sh install`), which refuses what Prometheus would refuse. PROMETHEUS_PYTHON
 * points at another Python that has it.
 */
import { execFile } from 'node:child_process'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { requireBinary } from './external.js'

const CACHE = process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache', 'filestorage')

export const PROMETHEUS_PYTHON = requireBinary(
  'PROMETHEUS_PYTHON',
  [join(CACHE, 'venv', 'bin', 'python')],
  'the Prometheus text-format parser (prometheus-client)',
)

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  type: string
  help: string
  samples: Sample[]
}

const PARSE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [{"name": s.name, "labels": s.labels, "value": s.value if math.isfinite(s.value) else str(s.value)} for s in f.samples]})
json.dump(out, sys.stdout)
`

/** The families of a scrape, parsed; rejects what the parser refuses. */
export function parseMetrics(text: string): Promise<Family[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(PROMETHEUS_PYTHON!, ['-c', PARSE], { maxBuffer: 64 * 1024 * 1024, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`the Prometheus parser refused the scrape: ${stderr || error.message}`))
      else resolve(JSON.parse(stdout) as Family[])
    })
    child.stdin!.end(text)
  })
}

/** The sum of the samples named `sample` whose labels include `labels` (0 when there are none). */
export function valueOf(families: Family[], sample: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const family of families) {
    for (const s of family.samples) {
      if (s.name !== sample) continue
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += Number(s.value)
    }
  }
  return sum
}

/** Every series of a scrape, as `name{labels}`. */
export function seriesOf(families: Family[]): Set<string> {
  return new Set(families.flatMap((f) => f.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`)))
}
