/**
 * Real services in tests (MongoDB-wire server, Consul agent, nginx). A suite asks for its service by
 * the variable that points at it. Under CI=true a missing service fails the run; elsewhere the
 * suite is skipped with a message naming the variable to set.
 */
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
