/**
 * What a bench run measures and how long, from the environment:
 *   BENCH_RUNS=3      measured runs per figure (the table shows medians)
 *   BENCH_QUICK=1     a short smoke run: one run, small files, short load
 *   BENCH_DIR=...     working folder for the generated files (default: <tmpdir>/filestorage-bench)
 *   BENCH_ONLY=disk,small,tus,mongo,memory,s3,events,obs   run only these scenarios
 *   BENCH_LOAD_SECONDS=5   seconds of wrk load per run (the small-file rows)
 */
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GiB, MiB } from './stats.js'

export interface Settings {
  quick: boolean
  runs: number
  dir: string
  only: Set<string> | null
  /** Section 1: the large transfer. */
  largeBytes: number
  /** Section 2: small files. */
  smallBytes: number
  connections: number
  wrkThreads: number
  loadSeconds: number
  warmupSeconds: number
  /** Section 3: the tus upload and its PATCH size. */
  tusBytes: number
  tusChunkBytes: number
  /** Section 4: GridFS transfers (FerretDB is slow with GridFS: kept smaller). */
  gridfsBytes: number
}

function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, not "${raw}"`)
  return n
}

export function readSettings(): Settings {
  const quick = process.env.BENCH_QUICK === '1' || process.env.BENCH_QUICK === 'true'
  const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null
  return {
    quick,
    runs: positiveInt('BENCH_RUNS', quick ? 1 : 3),
    dir: process.env.BENCH_DIR ?? join(tmpdir(), 'filestorage-bench'),
    only,
    largeBytes: quick ? 128 * MiB : GiB,
    smallBytes: 4096,
    connections: 32,
    wrkThreads: 2,
    loadSeconds: positiveInt('BENCH_LOAD_SECONDS', quick ? 2 : 5),
    warmupSeconds: quick ? 1 : 2,
    tusBytes: quick ? 64 * MiB : 512 * MiB,
    tusChunkBytes: 64 * MiB,
    gridfsBytes: quick ? 16 * MiB : 256 * MiB,
  }
}

/** "1 GiB", "512 MiB", "4 KiB" */
export function sizeLabel(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`
  return `${bytes} B`
}
