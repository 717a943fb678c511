/**
 * Real services in tests (MongoDB-wire server, Consul agent, nginx). A suite asks for its service by
 * the variable that points at it. Under CI=true a missing service fails the run; elsewhere the
 * suite is skipped with a message naming the variable to set.
 */
import { accessSync, constants } from 'node:fs'

export function requireService(variable: string, what: string): string | undefined {
  const value = process.env[variable]
  if (value) return value
  const hint = `start it with "scripts/test-services.sh start" (npm test does this when the binaries are built), or set ${variable}`
  if (process.env.CI === 'true') {
    throw new Error(`${variable} is not set: CI must run the ${what} tests against the real service; ${hint}`)
  }
  console.warn(`\n[filestorage tests] SKIPPING the ${what} suite: ${variable} is not set; ${hint}\n`)
  return undefined
}

/**
 * A program a suite runs itself (a Consul agent it restarts, an nginx it reloads): `variable` when
 * set, else the first of `defaults` that exists. Missing, it fails the run under CI=true and skips
 * the suite elsewhere, as requireService does; the message names `install`, the command that installs it.
 */
export function requireBinary(variable: string, defaults: string[], what: string, install = 'scripts/test-services.sh install'): string | undefined {
  const fromEnv = process.env[variable]
  const candidates = fromEnv ? [fromEnv] : defaults
  const found = candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
  if (found) return found
  const hint = `install it with "${install}", or set ${variable} (looked for: ${candidates.join(', ')})`
  if (process.env.CI === 'true') throw new Error(`${what} is not installed: CI must run the ${what} tests; ${hint}`)
  console.warn(`\n[filestorage tests] SKIPPING the ${what} suite: ${what} is not installed; ${hint}\n`)
  return undefined
}
