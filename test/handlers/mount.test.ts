/**
 * `mount`: an app routed into one that answers errors with the same function keeps its handlers as
 * they are (Hono would wrap each in one more compose), still answers its errors as JSON there and
 * on its own afterwards; with another error handler it is routed as Hono does.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OpenAPIHono } from '@hono/zod-openapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDownloadHandler, createFileStorageApp, mount, onError } from '../../src/handlers/index.js'
import { DiskDriver, StoreRegistry } from '../../src/storage/index.js'
import { expectError } from '../helpers/http.js'

let dir: string
let stores: StoreRegistry
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'filestorage-mount-'))
  stores = new StoreRegistry({ disk: await DiskDriver.open({ dir }) })
})
afterAll(async () => {
  await stores.close()
  await rm(dir, { recursive: true, force: true })
})

/** Handlers Hono wrapped in a compose of their sub-app's error handler (it marks them, hono/utils/constants). */
const wrapped = (app: OpenAPIHono) => app.routes.filter((r) => '__COMPOSED_HANDLER' in r.handler)

describe('mount', () => {
  it('routes a handler app into one with the same error handler without wrapping its handlers', async () => {
    const parent = new OpenAPIHono()
    parent.onError(onError)
    const child = createDownloadHandler({ stores })
    mount(parent, '/', child)
    expect(parent.routes.length).toBeGreaterThan(0)
    expect(wrapped(parent)).toEqual([])
    await expectError(await parent.request('/disk/download/missing.txt'), 404, 'not_found')
    await expectError(await parent.request('/disk/download/a%00b'), 400, 'invalid_path')
    // The child still answers its own errors when it serves requests itself.
    await expectError(await child.request('/disk/download/missing.txt'), 404, 'not_found')
  })

  it('leaves the wrapping to Hono when the parent answers errors another way', async () => {
    const parent = new OpenAPIHono()
    parent.onError((_, c) => c.text('the host answers', 500))
    mount(parent, '/', createDownloadHandler({ stores }))
    expect(wrapped(parent).length).toBe(parent.routes.length)
    await expectError(await parent.request('/disk/download/missing.txt'), 404, 'not_found') // still the handler's JSON
  })

  it('composes the file API with no handler wrapped but tus, whose errors carry the tus headers', async () => {
    const app = createFileStorageApp({ stores })
    expect(app.routes.length).toBeGreaterThan(50)
    expect(wrapped(app).map((r) => r.path).filter((p) => !p.includes('/tus'))).toEqual([])
    expect(wrapped(app).length).toBeGreaterThan(0)
    await expectError(await app.request('/filestorage/v1/disk/info/missing.txt'), 404, 'not_found')
  })
})
