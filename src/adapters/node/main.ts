/**
 * `npm start`: the whole service on Node, configured from the environment: in this process, or with
 * WORKERS > 1 in that many worker processes under this one (node:cluster shares the port).
 */
import { runService } from '../service/run.js'
import { startService } from './service.js'

runService(startService)
