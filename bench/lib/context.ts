/**
 * What every scenario is given: the settings, a working folder of its own (removed after the run),
 * the generated source files, and a way to say what it is doing.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ensureRandomFile } from './files.js'
import type { Settings } from './settings.js'

export interface BenchContext {
  settings: Settings
  /** This scenario's own folder for stores, nginx prefixes and logs. */
  workDir: string
  /** A file of `bytes` random bytes, generated once and reused between runs. */
  sourceFile(bytes: number): string
  log(message: string): void
}

export function scenarioContext(settings: Settings, runDir: string, scenario: string): BenchContext {
  const workDir = join(runDir, scenario)
  mkdirSync(workDir, { recursive: true })
  const sources = join(settings.dir, 'sources')
  mkdirSync(sources, { recursive: true })
  return {
    settings,
    workDir,
    sourceFile: (bytes) => ensureRandomFile(join(sources, `random-${bytes}.bin`), bytes),
    log: (message) => console.error(`[bench ${scenario}] ${message}`),
  }
}
