/**
 * `npm run start:bun`: the whole service on Bun, configured from the environment as `npm start` is:
 * in this process, or with WORKERS > 1 in that many worker processes under this one, each binding
 * the port with SO_REUSEPORT.
 */
import { runService } from '../service/run.js'
import { startService } from './service.js'

// Room for 16 KiB of X-File-Metadata (SPEC 3.1) beside the other headers: Bun allows 16 KiB in all
// unless told otherwise on its command line, as npm run start:bun does (workers inherit it).
if (!process.execArgv.some((arg) => arg.startsWith('--max-http-header-size'))) {
  console.warn('[filestorage] Bun accepts 16 KiB of request headers in all; run it with --max-http-header-size=65536 (npm run start:bun does)')
}

runService(startService)
