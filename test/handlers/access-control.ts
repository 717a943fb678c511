/**
 * Every file route refuses what it must (SPEC 6), over real HTTP with token auth on (HMAC secrets,
 * and an RSA key from a JWKS served on loopback): no token, a malformed one, a bad signature, an
 * expired token, another audience or issuer, `alg: none`, HS256 "signed" with the RSA public key, a
 * token without the right, a sibling prefix (users/ana vs users/anabel) and encoded paths. Each
 * answers 401/403 (404 for someone else's upload) with the JSON error, and the store is
 * byte-for-byte unchanged afterwards. One suite, run against each runtime (access-control.test.ts,
 * bun-api.test.ts).
 */
import { randomBytes } from 'node:crypto'
import { SignJWT, UnsecuredJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RawResponse, rawRequest } from '../helpers/http.js'
import { bearer, hmacKey, hmacToken, type JwksIssuer, keysEnv, snapshot, startJwksIssuer } from '../helpers/auth.js'
import type { Runtime } from '../helpers/process-service.js'
import { type HttpService, startServiceOn } from '../helpers/test-service.js'
import { TUS_HEADERS, uploadMetadata } from '../helpers/tus.js'

const ISSUER = 'https://issuer.test'
const AUDIENCE = 'filestorage'
const key = hmacKey('k1')
const API = '/filestorage/v1/disk'

export function describeAccessControl(runtime: Runtime): void {
  describe(`access control on ${runtime}`, () => {
    let jwks: JwksIssuer
    let svc: HttpService
    let before: Record<string, string>
    const ids = { parts: '', tus: '' }
    const tokens: Record<string, string> = {}

    /** An RS256 token of the JWKS issuer, for the service's issuer and audience unless overridden. */
    const rsToken = (sub: string, scope: string, claims: Record<string, unknown> = {}, expiresIn?: number) =>
      jwks.sign({ iss: ISSUER, aud: AUDIENCE, sub, scope, ...claims }, expiresIn === undefined ? {} : { expiresIn })

    beforeAll(async () => {
      jwks = await startJwksIssuer()
      svc = await startServiceOn(runtime, {
        AUTH_HMAC_SECRETS: keysEnv(key),
        AUTH_JWKS_URL: jwks.jwksUrl,
        AUTH_ISSUER: ISSUER,
        AUTH_AUDIENCE: AUDIENCE,
        AUTH_CLOCK_SKEW: '5s',
      })
      tokens.ana = await rsToken('ana', 'files:*:disk:users/ana')
      tokens.anabel = await hmacToken(key, 'anabel', ['files:*:disk:users/anabel'], { issuer: ISSUER, audience: AUDIENCE })
      tokens.anabelReadsPublic = await rsToken('anabel', 'files:read:disk:public')

      // What the refused requests would touch: files of both users, and anabel's unfinished uploads.
      for (const [token, path] of [
        [tokens.ana, 'users/ana/doc.txt'],
        [tokens.anabel, 'users/anabel/secret.txt'],
      ] as const) {
        expect((await rawRequest(svc.origin, 'PUT', `${API}/upload/${path}`, { headers: bearer(token), body: `content of ${path}` })).status).toBe(201)
      }
      const parts = await rawRequest(svc.origin, 'POST', `${API}/createupload/users/anabel/big.bin`, {
        headers: { ...bearer(tokens.anabel), 'Content-Type': 'application/json' },
        body: '{}',
      })
      ids.parts = parts.json<{ uploadId: string }>().uploadId
      expect((await rawRequest(svc.origin, 'PUT', `${API}/uploadpart/${ids.parts}?part=1`, { headers: bearer(tokens.anabel), body: 'part one' })).status).toBe(200)
      const tus = await rawRequest(svc.origin, 'POST', `${API}/tus/`, {
        headers: { ...bearer(tokens.anabel), ...TUS_HEADERS, 'Upload-Length': '10', 'Upload-Metadata': uploadMetadata({ path: 'users/anabel/t.bin' }) },
      })
      expect(tus.status).toBe(201)
      ids.tus = String(tus.headers.location).split('/').pop()!
      before = await snapshot(svc.storageDir)
    })
    afterAll(async () => {
      await svc?.stop()
      await jwks?.close()
    })

    const BOUNDARY = 'access-control-boundary'
    const form = `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\nContent-Type: text/plain\r\n\r\nform bytes\r\n--${BOUNDARY}--\r\n`
    const json = (body: unknown) => ({ body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } })

    type Send = (headers: Record<string, string>, target: { file: string; dir: string; decodedFile: string }) => Promise<RawResponse>
    const send =
      (method: string, path: (t: { file: string; dir: string; decodedFile: string }) => string, extra: { body?: string; headers?: Record<string, string> } = {}): Send =>
      (headers, target) =>
        rawRequest(svc.origin, method, path(target), { headers: { ...extra.headers, ...headers }, ...(extra.body !== undefined ? { body: extra.body } : {}) })

    /** The routes that name a path, each sent at a target file (and its folder). */
    const pathRoutes: [string, Send][] = [
      ['upload (PUT)', send('PUT', (t) => `${API}/upload/${t.file}`, { body: 'overwritten!' })],
      ['upload (form)', send('POST', (t) => `${API}/upload/${t.dir}`, { body: form, headers: { 'Content-Type': `multipart/form-data; boundary=${BOUNDARY}` } })],
      ['download (GET)', send('GET', (t) => `${API}/download/${t.file}`)],
      ['download (HEAD)', send('HEAD', (t) => `${API}/download/${t.file}`)],
      ['info', send('GET', (t) => `${API}/info/${t.file}`)],
      ['list', send('GET', (t) => `${API}/list/${t.dir}`)],
      ['list (recursive)', send('GET', (t) => `${API}/list/${t.dir}?recursive=true`)],
      ['move', send('POST', (t) => `${API}/move/${t.file}`, json({ to: 'users/ana/moved.txt' }))],
      ['delete', send('DELETE', (t) => `${API}/delete/${t.file}`)],
      ['createupload', send('POST', (t) => `${API}/createupload/${t.file}`, json({}))],
      ['sign', send('POST', (t) => `${API}/sign/${t.file}`, json({ operation: 'download' }))],
      ['tus creation', (headers, t) =>
        rawRequest(svc.origin, 'POST', `${API}/tus/`, {
          headers: { ...TUS_HEADERS, 'Upload-Length': '5', 'Upload-Metadata': uploadMetadata({ path: t.decodedFile }), 'Content-Type': 'application/offset+octet-stream', ...headers },
          body: 'hello',
        })],
    ]

    /** The routes that name an upload (anabel's), by id. */
    const uploadRoutes: [string, (headers: Record<string, string>) => Promise<RawResponse>][] = [
      ['uploadpart', (h) => rawRequest(svc.origin, 'PUT', `${API}/uploadpart/${ids.parts}?part=2`, { headers: h, body: 'part two' })],
      ['uploadstatus', (h) => rawRequest(svc.origin, 'GET', `${API}/uploadstatus/${ids.parts}`, { headers: h })],
      ['completeupload', (h) => rawRequest(svc.origin, 'POST', `${API}/completeupload/${ids.parts}`, { headers: { ...h, 'Content-Type': 'application/json' }, body: '{}' })],
      ['abortupload', (h) => rawRequest(svc.origin, 'DELETE', `${API}/abortupload/${ids.parts}`, { headers: h })],
      ['tus HEAD', (h) => rawRequest(svc.origin, 'HEAD', `${API}/tus/${ids.tus}`, { headers: { ...TUS_HEADERS, ...h } })],
      ['tus PATCH', (h) =>
        rawRequest(svc.origin, 'PATCH', `${API}/tus/${ids.tus}`, {
          headers: { ...TUS_HEADERS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', ...h },
          body: '0123456789',
        })],
      ['tus DELETE', (h) => rawRequest(svc.origin, 'DELETE', `${API}/tus/${ids.tus}`, { headers: { ...TUS_HEADERS, ...h } })],
      ['tus POST as PATCH', (h) =>
        rawRequest(svc.origin, 'POST', `${API}/tus/${ids.tus}`, {
          headers: { ...TUS_HEADERS, 'X-HTTP-Method-Override': 'PATCH', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', ...h },
          body: '0123456789',
        })],
    ]

    /** Credentials that are refused with 401, each a variation of a token that would be accepted. */
    const refusedCredentials: [string, () => Promise<Record<string, string>>, boolean][] = [
      ['no token', async () => ({}), false],
      ['a malformed token', async () => ({ Authorization: 'Bearer not-a.jwt' }), true],
      ['another scheme (Basic)', async () => ({ Authorization: 'Basic YW5hOnNlY3JldA==' }), true],
      ['a bad signature', async () => {
        const [h, p, s] = (await rsToken('ana', 'files:*:disk:users/ana')).split('.') as [string, string, string]
        return bearer(`${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`)
      }, true],
      ['an expired token', async () => bearer(await rsToken('ana', 'files:*:disk:users/ana', {}, -3600)), true],
      ['a token for another audience', async () => bearer(await rsToken('ana', 'files:*:disk:users/ana', { aud: 'another-service' })), true],
      ['a token from another issuer', async () => bearer(await rsToken('ana', 'files:*:disk:users/ana', { iss: 'https://evil.test' })), true],
      ['an HMAC token from another issuer', async () => bearer(await hmacToken(key, 'ana', ['files:*:disk:users/ana'], { issuer: 'https://evil.test', audience: AUDIENCE })), true],
      ['alg: none', async () =>
        bearer(new UnsecuredJWT({ sub: 'ana', scope: 'files:*:disk:users/ana' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime('10m').encode()), true],
      ['HS256 signed with the RSA public key', async () =>
        bearer(
          await new SignJWT({ sub: 'ana', scope: 'files:*:disk:users/ana' })
            .setProtectedHeader({ alg: 'HS256', kid: jwks.kid })
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setExpirationTime('10m')
            .sign(Buffer.from(jwks.publicPem)),
        ), true],
      ['an HMAC token under a key the service does not list', async () =>
        bearer(await hmacToken({ kid: 'k1', secret: randomBytes(32).toString('hex') }, 'ana', ['files:*:disk:users/ana'], { issuer: ISSUER, audience: AUDIENCE })), true],
      ['a token without a subject', async () => bearer(await jwks.sign({ iss: ISSUER, aud: AUDIENCE, scope: 'files:*:disk:users/ana' })), true],
    ]

    const ANA = { file: 'users/ana/doc.txt', dir: 'users/ana', decodedFile: 'users/ana/doc.txt' }
    const ANABEL = { file: 'users/anabel/secret.txt', dir: 'users/anabel', decodedFile: 'users/anabel/secret.txt' }

    async function expectRefused(res: RawResponse, method: string, status: number, code: string) {
      expect(res.status).toBe(status)
      if (method === 'HEAD') return
      expect(String(res.headers['content-type'])).toMatch(/^application\/json/)
      expect(res.json<{ error: { code: string; message: string } }>().error.code).toBe(code)
    }

    describe('access control on every route', () => {
      describe.each(pathRoutes)('%s', (_name, sendTo) => {
        const method = (_name.match(/HEAD/) ? 'HEAD' : 'other') as string
        it.each(refusedCredentials)('answers 401 to %s, with WWW-Authenticate', async (_what, credentials, invalidToken) => {
          const res = await sendTo(await credentials(), ANA)
          await expectRefused(res, method, 401, 'unauthorized')
          expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer realm="filestorage"/)
          if (invalidToken) expect(String(res.headers['www-authenticate'])).toContain('error="invalid_token"')
        })

        it('answers 403 to a valid token without the right', async () => {
          const res = await sendTo(bearer(tokens.anabelReadsPublic!), ANA)
          await expectRefused(res, method, 403, 'forbidden')
          if (method !== 'HEAD') expect(String(res.headers['www-authenticate'])).toContain('error="insufficient_scope"')
        })

        it('answers 403 for a sibling of the granted prefix (users/ana does not grant users/anabel)', async () => {
          await expectRefused(await sendTo(bearer(tokens.ana!), ANABEL), method, 403, 'forbidden')
        })

        it('never reaches outside the prefix through encoded paths', async () => {
          // Bun resolves `%2e%2e` segments of the URL before the app sees them: the request is then for
          // users/anabel, refused as such (tus creation names its path in its metadata, not in the URL).
          const dotsResolved = runtime === 'bun' && _name !== 'tus creation'
          for (const [target, status, code] of [
            [
              { file: 'users/ana/%2e%2e/anabel/secret.txt', dir: 'users/ana/%2E%2E/anabel', decodedFile: 'users/ana/../anabel/secret.txt' },
              dotsResolved ? 403 : 400,
              dotsResolved ? 'forbidden' : 'invalid_path',
            ],
            [{ file: 'users/ana%2F..%2Fanabel/secret.txt', dir: 'users/ana%2F..%2Fanabel', decodedFile: 'users/ana/./../anabel/secret.txt' }, 400, 'invalid_path'],
            [{ file: 'users%2Fanabel%2Fsecret.txt', dir: 'users%2Fanabel', decodedFile: 'users/anabel/secret.txt' }, 403, 'forbidden'],
            [{ file: 'users/an%61bel/secret.txt', dir: 'users/an%61bel', decodedFile: 'users/an\u0061bel/secret.txt' }, 403, 'forbidden'],
          ] as const) {
            // A traversal is a bad path before it is anything else; a path that decodes into the sibling is refused as such.
            await expectRefused(await sendTo(bearer(tokens.ana!), target), method, status, code)
          }
        })
      })

      describe.each(uploadRoutes)('%s', (name, sendWith) => {
        const method = name.includes('HEAD') ? 'HEAD' : 'other'
        it.each(refusedCredentials)('answers 401 to %s', async (_what, credentials) => {
          await expectRefused(await sendWith(await credentials()), method, 401, 'unauthorized')
        })

        it("answers 404 to another principal: someone else's upload does not exist for it", async () => {
          await expectRefused(await sendWith(bearer(tokens.ana!)), method, 404, 'not_found')
        })

        it('answers 403 to its owner once the token lacks the right on its file', async () => {
          await expectRefused(await sendWith(bearer(tokens.anabelReadsPublic!)), method, 403, 'forbidden')
        })
      })

      it('moves neither from nor into a prefix the token does not cover', async () => {
        const into = await rawRequest(svc.origin, 'POST', `${API}/move/users/ana/doc.txt`, {
          headers: { ...bearer(tokens.ana!), 'Content-Type': 'application/json' },
          body: JSON.stringify({ to: 'users/anabel/planted.txt' }),
        })
        await expectRefused(into, 'POST', 403, 'forbidden')
      })

      it('leaves the store byte-for-byte as it was', async () => {
        expect(await snapshot(svc.storageDir)).toEqual(before)
      })

      it('lets the same requests through with the right token (the refusals above are the tokens\', not the setup\'s)', async () => {
        expect((await rawRequest(svc.origin, 'GET', `${API}/download/users/ana/doc.txt`, { headers: bearer(tokens.ana!) })).body.toString()).toBe(
          'content of users/ana/doc.txt',
        )
        expect((await rawRequest(svc.origin, 'GET', `${API}/uploadstatus/${ids.parts}`, { headers: bearer(tokens.anabel!) })).status).toBe(200)
        expect((await rawRequest(svc.origin, 'HEAD', `${API}/tus/${ids.tus}`, { headers: { ...TUS_HEADERS, ...bearer(tokens.anabel!) } })).status).toBe(200)
        const hs = await hmacToken(key, 'ana', ['files:read:disk:users/ana'], { issuer: ISSUER, audience: AUDIENCE })
        expect((await rawRequest(svc.origin, 'GET', `${API}/info/users/ana/doc.txt`, { headers: bearer(hs) })).status).toBe(200)
      })

      it('keeps the public routes public: check, help, the docs, and tus OPTIONS', async () => {
        for (const path of ['/filestorage/v1/check', '/filestorage/v1/help', '/filestorage/v1/openapi.json', '/filestorage/v1/docs']) {
          expect((await rawRequest(svc.origin, 'GET', path)).status, path).toBe(200)
        }
        const options = await rawRequest(svc.origin, 'OPTIONS', `${API}/tus/`)
        expect(options.status).toBe(204)
        expect(options.headers['tus-version']).toBe('1.0.0')
      })
    })
  })
}
