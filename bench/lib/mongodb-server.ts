/**
 * The MongoDB-wire server for section 4: MONGODB_URI when it is set, else FerretDB started
 * through scripts/test-services.sh in a run folder of the bench's own (so that it never touches
 * the services other test runs on this machine are using).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { onInterrupt } from './processes.js'
import { PROJECT_DIR } from './service.js'

const SCRIPT = join(PROJECT_DIR, 'scripts', 'test-services.sh')

export type MongodbServer =
  | { uri: string; what: string; stop(): void }
  | { uri?: undefined; reason: string }

export function mongodbServer(runDir: string): MongodbServer {
  if (process.env.MONGODB_URI) return { uri: process.env.MONGODB_URI, what: 'MONGODB_URI', stop: () => {} }
  const cache = process.env.FILESTORAGE_CACHE ?? join(homedir(), '.cache', 'filestorage')
  const ferretdb = join(cache, 'bin', 'ferretdb')
  if (!existsSync(ferretdb)) {
    return { reason: `MONGODB_URI is not set and FerretDB is not built (${ferretdb}; scripts/test-services.sh install)` }
  }
  const env = { ...process.env, FILESTORAGE_RUN: runDir, FILESTORAGE_CACHE: cache }
  execFileSync('bash', [SCRIPT, 'start', 'ferretdb'], { env, stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 })
  const vars = readFileSync(join(runDir, 'env'), 'utf8')
  const uri = /^export MONGODB_URI=(.+)$/m.exec(vars)?.[1]
  const stopFerretdb = () =>
    execFileSync('bash', [SCRIPT, 'stop', 'ferretdb'], { env, stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 })
  const forget = onInterrupt(stopFerretdb)
  const stop = () => {
    forget()
    stopFerretdb()
  }
  if (!uri) {
    stop()
    return { reason: 'scripts/test-services.sh started FerretDB but wrote no MONGODB_URI' }
  }
  return { uri, what: 'FerretDB (SQLite backend) from scripts/test-services.sh', stop }
}
