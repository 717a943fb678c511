/**
 * `npm run start:bun`: the whole service on Bun, configured from the environment as `npm start` is:
 * in this process, or with WORKERS > 1 in that many worker processes under this one, each binding
 * the port with SO_REUSEPORT.
 */
import { runService } from '../service/run.js'
import { startService } from './service.js'

runService(startService)
