/** The global setup hands the real services to the suites (or, outside CI, says why it could not). */
import { describe, expect, it } from 'vitest'
import { requireService } from '../helpers/external.js'

describe('real services for this run', () => {
  const uri = requireService('MONGODB_URI', 'MongoDB-wire server')
  const consul = requireService('CONSUL_HTTP_ADDR', 'Consul agent')

  it.runIf(uri !== undefined)('MONGODB_URI points at a server that answers', async () => {
    const { MongoClient } = await import('mongodb')
    const client = new MongoClient(uri!, { serverSelectionTimeoutMS: 5000 })
    try {
      expect((await client.db('admin').command({ ping: 1 })).ok).toBe(1)
    } finally {
      await client.close()
    }
  })

  it.runIf(consul !== undefined)('CONSUL_HTTP_ADDR points at an agent with a leader', async () => {
    const res = await fetch(`http://${consul}/v1/status/leader`, { signal: AbortSignal.timeout(5000) })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatch(/^127\.0\.0\.1:\d+$/)
  })
})
