/**
 * The tus peer: `@tus/server` with `@tus/file-store` from npm, as their README sets them up, on
 * loopback. Run as its own process by the bench: PORT and TUS_DIR from the environment; serves
 * the tus endpoint at /files/.
 */
import { createServer } from 'node:http'
import { FileStore } from '@tus/file-store'
import { Server } from '@tus/server'

const port = Number(process.env.PORT ?? 1080)
const directory = process.env.TUS_DIR ?? './tus-files'

const tus = new Server({ path: '/files', datastore: new FileStore({ directory }) })
const http = createServer((req, res) => void tus.handle(req, res))
http.listen(port, '127.0.0.1', () => console.log(`tus peer on http://127.0.0.1:${port}/files/ storing in ${directory}`))
process.on('SIGTERM', () => http.close(() => process.exit(0)))
