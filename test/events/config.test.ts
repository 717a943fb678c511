/**
 * Signing, filters and configuration of events: our signatures verify with the reference
 * `standardwebhooks` library (and only for the body, id and time signed), secrets are checked,
 * `Retry-After` is read both ways, filters match whole path segments, and a bad configuration stops
 * start-up naming the variable (never showing a secret); the OpenAPI document lists the webhooks.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Webhook } from 'standardwebhooks'
import { afterAll, describe, expect, test } from 'vitest'
import { eventsOptions } from '../../src/adapters/service/events-config.js'
import { ConfigError, loadConfig } from '../../src/adapters/service/config.js'
import { accepts, parseRetryAfter, parseSecret, webhookHeaders } from '../../src/events/index.js'
import { createTokenVerifier, tokenAuthorizer } from '../../src/auth/index.js'
import { createFileStorageApp } from '../../src/handlers/index.js'
import { DiskDriver, EVENT_TYPES, type EventBody, StoreRegistry } from '../../src/storage/index.js'
import { newSecret } from '../helpers/webhook-receiver.js'

describe('signing', () => {
  test('every try verifies with the reference library under each rotating secret, and nothing else does', () => {
    const [a, b] = [newSecret(), newSecret()]
    const body = JSON.stringify({ type: 'file.created', timestamp: new Date().toISOString(), data: { path: 'x' } })
    const headers = webhookHeaders([parseSecret(a), parseSecret(b)], 'evt_1', body)
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2)
    for (const secret of [a, b]) expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body))
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow()
    expect(() => new Webhook(a).verify(`${body} `, headers)).toThrow()
    expect(() => new Webhook(a).verify(body, { ...headers, 'webhook-id': 'evt_2' })).toThrow()
    // Signed now: a try signed 10 minutes ago is refused.
    const old = webhookHeaders([parseSecret(a)], 'evt_1', body, Date.now() - 10 * 60_000)
    expect(() => new Webhook(a).verify(body, old)).toThrow(/timestamp/i)
  })

  test('secrets are whsec_ and base64 of 24 to 64 bytes', () => {
    expect(parseSecret(`whsec_${randomBytes(32).toString('base64')}`)).toHaveLength(32)
    for (const bad of ['secret', `whsec_${randomBytes(8).toString('base64')}`, 'whsec_!!!', `whsec_${randomBytes(80).toString('base64')}`]) {
      expect(() => parseSecret(bad), bad).toThrow(/whsec_/)
    }
  })

  test('Retry-After in seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-30T12:00:00Z')
    expect(parseRetryAfter('120', now)).toBe(120_000)
    expect(parseRetryAfter('Mon, 30 Nov 2026 12:00:30 GMT', now)).toBe(30_000)
    expect(parseRetryAfter('Mon, 30 Nov 2026 11:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
  })
})

describe('filters', () => {
  const event = (type: EventBody['type'], data: Partial<EventBody['data']>): EventBody => ({
    id: 'evt_x',
    type,
    timestamp: '',
    data: { schemaVersion: 1, path: '', ...data },
  })
  test('by store, whole path segments (a folder event reaches a prefix under it), and type patterns', () => {
    const photos = { prefixes: ['photos'] }
    expect(accepts(photos, 'disk', event('file.created', { path: 'photos/a.jpg' }))).toBe(true)
    expect(accepts(photos, 'disk', event('file.created', { path: 'photos2/a.jpg' }))).toBe(false)
    expect(accepts(photos, 'disk', event('file.moved', { path: 'elsewhere/a.jpg', from: 'photos/a.jpg' }))).toBe(true)
    expect(accepts({ prefixes: ['photos/2024'] }, 'disk', event('file.deleted', { path: 'photos', kind: 'directory' }))).toBe(true)
    expect(accepts({ prefixes: ['photos/2024'] }, 'disk', event('file.deleted', { path: 'photos', kind: 'file' }))).toBe(false)
    expect(accepts({ stores: ['mongo'] }, 'disk', event('file.created', { path: 'a' }))).toBe(false)
    expect(accepts({ types: ['upload.*'] }, 'disk', event('upload.expired', { path: 'a' }))).toBe(true)
    expect(accepts({ types: ['upload.*'] }, 'disk', event('file.created', { path: 'a' }))).toBe(false)
    expect(accepts({ types: ['*'] }, 'disk', event('file.created', { path: 'a' }))).toBe(true)
  })
})

describe('configuration', () => {
  const written: string[] = []
  afterAll(async () => {
    for (const path of written) await rm(path, { force: true })
  })
  const base = { HOST: '127.0.0.1' }
  const options = (env: Record<string, string>) => eventsOptions(loadConfig({ ...base, ...env }))
  const failure = (run: () => unknown): string => {
    try {
      run()
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError)
      return (e as Error).message
    }
    throw new Error('no configuration error')
  }
  const file = async (content: unknown) => {
    const path = join(tmpdir(), `events-config-${randomBytes(4).toString('hex')}.json`)
    written.push(path)
    await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content))
    return path
  }

  test('nothing configured: no events at all; defaults otherwise', () => {
    expect(options({})).toBeUndefined()
    const secret = newSecret()
    const o = options({ WEBHOOK_URL: 'https://hooks.example/x', WEBHOOK_SECRET: secret })!
    expect(o.endpoints).toMatchObject([{ name: 'default', url: 'https://hooks.example/x', timeoutMs: 10_000, filter: {} }])
    expect(o).toMatchObject({ retryForMs: 24 * 3_600_000, maxBacklog: 100_000, hooks: {} })
  })

  test('a bad value stops start-up naming the variable, never showing a secret', () => {
    const secret = `whsec_${randomBytes(8).toString('base64')}`
    const shown = failure(() => options({ WEBHOOK_URL: 'https://h.example', WEBHOOK_SECRET: secret }))
    expect(shown).toContain('WEBHOOK_SECRET (value not shown)')
    expect(shown).not.toContain(secret)
    expect(failure(() => options({ WEBHOOK_URL: 'https://h.example' }))).toContain('set WEBHOOK_SECRET too')
    expect(failure(() => options({ WEBHOOK_SECRET: newSecret() }))).toContain('without WEBHOOK_URL')
    expect(failure(() => options({ PRE_UPLOAD_HOOK_URL: 'https://h.example' }))).toContain('set HOOK_SECRET too')
    expect(failure(() => options({ WEBHOOK_RETRY_FOR: 'a day' }))).toContain('WEBHOOK_RETRY_FOR')
    expect(failure(() => options({ EVENTS_REDIS_URL: 'http://r:6379' }))).toContain('EVENTS_REDIS_URL')
    expect(failure(() => options({ EVENTS_CONFIG: '/nonexistent/events.json' }))).toContain('cannot be read (ENOENT)')
    expect(failure(() => options({ EVENTS_CONFIG: '/dev/null' }))).toContain('not JSON')
  })

  test('EVENTS_CONFIG: endpoints with filters and hooks; a mistake in it is named with its place', async () => {
    const secret = newSecret()
    const good = await file({
      endpoints: [{ name: 'idx', url: 'https://a.example/h', secrets: [secret, newSecret()], stores: ['disk'], prefixes: ['/photos/'], types: ['file.*'], timeout: '3s' }],
      hooks: { 'pre-upload': { url: 'https://b.example/h', secret, timeout: '500ms', onFailure: 'allow' } },
      redis: { url: 'redis://127.0.0.1:6379', stream: 's', maxLen: 10 },
    })
    const o = options({ EVENTS_CONFIG: good })!
    expect(o.endpoints[0]).toMatchObject({ name: 'idx', timeoutMs: 3000, filter: { stores: ['disk'], prefixes: ['photos'], types: ['file.*'] } })
    expect(o.endpoints[0]!.keys).toHaveLength(2)
    expect(o.hooks.preUpload).toMatchObject({ url: 'https://b.example/h', timeoutMs: 500, onFailure: 'allow' })
    expect(o.redis).toEqual({ url: 'redis://127.0.0.1:6379', stream: 's', maxLen: 10 })
    const cases: [unknown, string][] = [
      [{ endpoints: [{ name: 'a', url: 'https://a.example' }] }, 'endpoints.0: give "secret"'],
      [{ endpoints: [{ name: 'a b', url: 'https://a.example', secret }] }, 'endpoints.0.name'],
      [{ endpoints: [{ name: 'a', url: 'ftp://a.example', secret }] }, 'endpoints.0.url'],
      [{ endpoints: [{ name: 'a', url: 'https://a.example', secret, types: ['file.renamed'] }] }, 'endpoints.0.types.0'],
      [{ endpoints: [{ name: 'a', url: 'https://a.example', secret, prefixes: ['a/../b'] }] }, 'endpoints.0.prefixes.0'],
      [{ endpoints: [{ name: 'a', url: 'https://a.example', secret, color: 'red' }] }, 'endpoints.0: Unrecognized key'],
      [{ endpoints: [{ name: 'a', url: 'https://a.example', secret }, { name: 'a', url: 'https://b.example', secret }] }, 'names the endpoint "a" twice'],
      [{ hooks: { 'pre-upload': { url: 'https://a.example', secret: 'nope' } } }, 'hooks.pre-upload.secret'],
    ]
    for (const [content, expected] of cases) {
      const path = await file(content)
      expect(failure(() => options({ EVENTS_CONFIG: path })), JSON.stringify(content)).toContain(expected)
    }
    const both = await file({ hooks: { 'pre-delete': { url: 'https://a.example', secret } } })
    expect(failure(() => options({ EVENTS_CONFIG: both, PRE_DELETE_HOOK_URL: 'https://b.example', HOOK_SECRET: secret }))).toContain('both configure this hook')
  })
})

describe('the OpenAPI document', () => {
  test('lists every event type under webhooks (OpenAPI 3.1), with the signing headers, and the admin routes behind a bearer token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'filestorage-events-doc-'))
    const stores = new StoreRegistry({ disk: await DiskDriver.open({ dir }) })
    try {
      const access = { authorizer: tokenAuthorizer(createTokenVerifier({ hmacSecrets: [{ kid: 'k1', secret: randomBytes(32).toString('hex') }] })) }
      const doc = (await (await createFileStorageApp({ stores, access }).request('/filestorage/v1/openapi.json')).json()) as {
        webhooks: Record<string, { post: { requestBody: { content: { 'application/json': { schema: unknown } } }; parameters: { name: string; in: string }[]; security: unknown[] } }>
        paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>
        components: { schemas: Record<string, { properties?: Record<string, unknown> }> }
      }
      expect(Object.keys(doc.webhooks).sort()).toEqual([...EVENT_TYPES].sort())
      const created = doc.webhooks['file.created']!.post
      expect(created.parameters.filter((p) => p.in === 'header').map((p) => p.name).sort()).toEqual(['webhook-id', 'webhook-signature', 'webhook-timestamp'])
      expect(created.security).toEqual([])
      expect(Object.keys(doc.components.schemas.EventData!.properties!)).toEqual(expect.arrayContaining(['schemaVersion', 'store', 'path', 'from', 'sha256', 'metadata', 'subject', 'requestId']))
      for (const path of ['/filestorage/v1/admin/events', '/filestorage/v1/admin/events/{store}/deadletters', '/filestorage/v1/admin/events/{store}/deadletters/replay']) {
        const operation = Object.values(doc.paths[path]!)[0]!
        expect(operation.security, path).toEqual([{ bearerAuth: [] }])
        expect(Object.keys(operation.responses)).toContain('403')
      }
    } finally {
      await stores.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
