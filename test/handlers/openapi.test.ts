/**
 * The OpenAPI document, generated from the route definitions the handlers validate with. The docs
 * page over it is tested over real HTTP in docs-page.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFileStorageApp, fileRoutes } from '../../src/handlers/index.js'
import { DiskDriver, errorCodes, StoreRegistry } from '../../src/storage/index.js'

interface Operation {
  operationId: string
  parameters?: { name: string; in: string }[]
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>
}

describe('OpenAPI document', () => {
  let dir: string
  let app: ReturnType<typeof createFileStorageApp>
  let doc: { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } }
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'filestorage-openapi-'))
    app = createFileStorageApp({ stores: new StoreRegistry({ disk: await DiskDriver.open({ dir }) }) })
    const res = await app.request('/filestorage/v1/openapi.json')
    expect(res.status).toBe(200)
    doc = (await res.json()) as typeof doc
  })
  afterAll(async () => rm(dir, { recursive: true, force: true }))

  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op })))

  it('is OpenAPI 3.1 with every route, under the base path, with plain path templates', () => {
    expect(doc.openapi).toBe('3.1.0')
    const routes = operations().map(({ path, method }) => `${method.toUpperCase()} ${path}`)
    for (const route of fileRoutes) {
      const path = `/filestorage/v1${route.path.replace(/\{(\w+)\{[^}]*\}\}/g, '{$1}')}`
      expect(routes).toContain(`${route.method.toUpperCase()} ${path}`)
    }
    expect(Object.keys(doc.paths).some((p) => p.includes('\\'))).toBe(false)
  })

  it('names every path parameter its template uses', () => {
    for (const { path, op } of operations()) {
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort()
      expect(declared, path).toEqual(inPath)
    }
  })

  it('documents the JSON error shape on every route that can fail', () => {
    const schemas = doc.components.schemas as Record<string, { properties?: Record<string, { properties?: { code?: { enum?: string[] } } }> }>
    expect(schemas.Error?.properties?.error?.properties?.code?.enum).toEqual([...errorCodes])
    for (const { path, method, op } of operations()) {
      if (path.endsWith('/check') || path.endsWith('/help')) continue
      const errors = Object.keys(op.responses).filter((s) => Number(s) >= 400)
      expect(errors.length, `${method} ${path}`).toBeGreaterThan(0)
      for (const s of errors) {
        if (method === 'head') continue // answers to HEAD carry no body
        expect(op.responses[s]!.content?.['application/json'], `${method} ${path} ${s}`).toBeDefined()
      }
    }
  })

  it('has unique operation ids and the named schemas', () => {
    const ids = operations().map(({ op }) => op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    for (const name of ['FileInfo', 'DirectoryInfo', 'ListPage', 'UploadSession', 'UploadStatus', 'PartInfo', 'Error', 'MoveRequest']) {
      expect(Object.keys(doc.components.schemas)).toContain(name)
    }
  })
})
