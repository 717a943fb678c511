/**
 * Node's ceiling for small files: a bare `node:http` server, no framework, no checks beyond a
 * path guard. GET reads the whole file with `fs.readFile` and answers it in one write; PUT streams
 * the body into the file. Run as its own process by the bench: PORT, ROOT and WORKERS (node:cluster
 * workers sharing the listening socket; 1, the default, serves from this process alone).
 */
import cluster from 'node:cluster'
import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'

const port = Number(process.env.PORT ?? 8080)
const root = process.env.ROOT ?? '.'
const workers = Number(process.env.WORKERS ?? 1)

/** The file a request names under ROOT, or undefined for a path that could leave it. */
function fileOf(url: string | undefined): string | undefined {
  const path = (url ?? '/').split('?')[0]!
  return /^(\/[\w.-]+)+$/.test(path) && !path.includes('/..') ? join(root, path) : undefined
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const file = fileOf(req.url)
  if (!file) {
    res.writeHead(400).end()
  } else if (req.method === 'GET') {
    const body = await readFile(file)
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body)
  } else if (req.method === 'PUT') {
    await pipeline(req, createWriteStream(file))
    res.writeHead(201, { 'content-length': 0 }).end()
  } else {
    res.writeHead(405).end()
  }
}

function serve(): void {
  const server = createServer((req, res) => {
    handle(req, res).catch((e: NodeJS.ErrnoException) => {
      if (!res.headersSent) res.writeHead(e.code === 'ENOENT' ? 404 : 500).end()
      else res.destroy()
    })
  })
  server.keepAliveTimeout = 65_000
  server.listen(port, '127.0.0.1')
  process.on('SIGTERM', () => server.close(() => process.exit(0)))
}

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork()
  process.on('SIGTERM', () => {
    cluster.on('exit', () => Object.keys(cluster.workers ?? {}).length === 0 && process.exit(0))
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
  })
} else {
  serve()
}
