/**
 * Tokens from a real OpenID Connect provider (oidc-provider, a certified implementation) running on
 * loopback: a client-credentials client gets JWT access tokens for the filestorage resource, and the
 * service verifies them through the provider's discovery document and JWKS only (AUTH_ISSUER). The
 * provider then rotates its signing key while the service runs: a token signed with the new key is
 * accepted once the service refetches the JWKS for the unknown kid, and one signed with the old key
 * still is while the old key stays published.
 */
import { createServer, type Server } from 'node:http'
import { exportJWK, generateKeyPair, type JWK } from 'jose'
import Provider from 'oidc-provider'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer } from '../helpers/auth.js'
import { expectError } from '../helpers/http.js'
import { freePorts } from '../helpers/ports.js'
import { startTestService, type TestService } from '../helpers/test-service.js'
import { waitFor } from '../helpers/wait.js'

const RESOURCE = 'https://filestorage.test'
const AUDIENCE = 'filestorage'
const CLIENT = { client_id: 'uploader', client_secret: 'a-client-secret-of-enough-length-0123456789' }
const GRANTABLE = 'files:*:disk:users/uploader files:read:disk:public'

let issuer: string
let port: number
let server: Server | undefined
let svc: TestService

async function signingKey(kid: string): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }
}

/** Runs a provider publishing `keys` (the first signs) at the issuer URL, replacing the one running. */
async function runProvider(keys: JWK[]): Promise<void> {
  await stopProvider()
  const provider = new Provider(issuer, {
    clients: [{ ...CLIENT, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }],
    jwks: { keys: keys as never[] },
    cookies: { keys: ['a-cookie-key-for-the-test-provider'] },
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== RESOURCE && resource !== 'https://other.test') throw new Error(`unknown resource ${resource}`)
          return {
            scope: GRANTABLE,
            audience: resource === RESOURCE ? AUDIENCE : 'another-service',
            accessTokenFormat: 'jwt',
            accessTokenTTL: 300,
            jwt: { sign: { alg: 'RS256' } },
          }
        },
      },
    },
  })
  server = createServer(provider.callback())
  await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve))
}

async function stopProvider(): Promise<void> {
  if (!server) return
  const s = server
  server = undefined
  s.closeAllConnections()
  await new Promise<void>((resolve) => s.close(() => resolve()))
}

/** A client-credentials access token from the provider, as any OAuth client library gets one. */
async function accessToken(scope: string, resource = RESOURCE): Promise<string> {
  const request = () =>
    fetch(`${issuer}/token`, {
      method: 'POST',
      headers: {
        Authorization: `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}`,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope, resource }),
    })
  // A kept-alive connection to the provider that was just replaced is closed under the first try.
  const res = await request().catch(request)
  expect(res.status, await res.clone().text()).toBe(200)
  return ((await res.json()) as { access_token: string }).access_token
}

const kidOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid

let oldKey: JWK
let newKey: JWK

beforeAll(async () => {
  ;[port] = (await freePorts(1)) as [number]
  issuer = `http://127.0.0.1:${port}`
  oldKey = await signingKey('key-2024')
  newKey = await signingKey('key-2025')
  await runProvider([oldKey])
  svc = await startTestService({ AUTH_ISSUER: issuer, AUTH_AUDIENCE: AUDIENCE, AUTH_JWKS_COOLDOWN: '1s' })
})
afterAll(async () => {
  await svc?.stop()
  await stopProvider()
})

describe('tokens from an OpenID Connect provider', () => {
  it('are verified through discovery and the JWKS, with the rights their scopes grant', async () => {
    const token = await accessToken(GRANTABLE)
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
    expect(claims).toMatchObject({ iss: issuer, aud: AUDIENCE, sub: CLIENT.client_id, scope: GRANTABLE })
    const put = await fetch(`${svc.api}/disk/upload/users/uploader/report.txt`, { method: 'PUT', headers: bearer(token), body: 'from a client' })
    expect(put.status, await put.clone().text()).toBe(201)
    expect(await (await fetch(`${svc.api}/disk/download/users/uploader/report.txt`, { headers: bearer(token) })).text()).toBe('from a client')
    await expectError(await fetch(`${svc.api}/disk/upload/users/someone/x.txt`, { method: 'PUT', headers: bearer(token), body: 'x' }), 403, 'forbidden')
  })

  it('refuse a token that asked for less, one for another audience, and one altered', async () => {
    const readOnly = await accessToken('files:read:disk:public')
    await expectError(await fetch(`${svc.api}/disk/upload/users/uploader/y.txt`, { method: 'PUT', headers: bearer(readOnly), body: 'y' }), 403, 'forbidden')
    const elsewhere = await accessToken(GRANTABLE, 'https://other.test')
    const refused = await expectError(await fetch(`${svc.api}/disk/info/users/uploader/report.txt`, { headers: bearer(elsewhere) }), 401, 'unauthorized')
    expect(refused.error.message).toContain('"aud"')
    const [h, , s] = (await accessToken(GRANTABLE)).split('.')
    const forged = `${h}.${Buffer.from(JSON.stringify({ iss: issuer, aud: AUDIENCE, sub: 'admin', scope: 'files:*:*:', exp: 9999999999 })).toString('base64url')}.${s}`
    await expectError(await fetch(`${svc.api}/disk/info/users/uploader/report.txt`, { headers: bearer(forged) }), 401, 'unauthorized')
  })

  it('keep working across a key rotation while the service runs', async () => {
    const before = await accessToken(GRANTABLE)
    expect(kidOf(before)).toBe('key-2024')

    // The provider now signs with a new key and still publishes the old one.
    await runProvider([newKey, oldKey])
    const after = await accessToken(GRANTABLE)
    expect(kidOf(after)).toBe('key-2025')
    // The unknown kid makes the service fetch the JWKS again, at most once per AUTH_JWKS_COOLDOWN.
    await waitFor(
      'the service to accept a token signed with the new key',
      async () => (await fetch(`${svc.api}/disk/info/users/uploader/report.txt`, { headers: bearer(after) })).status === 200,
      { timeoutMs: 15_000, intervalMs: 300 },
    )
    expect((await fetch(`${svc.api}/disk/info/users/uploader/report.txt`, { headers: bearer(before) })).status).toBe(200)
  })

  it('answers 503, not 401, while the provider cannot be reached for a key it has never seen', async () => {
    await stopProvider()
    const { privateKey } = await generateKeyPair('RS256')
    const { SignJWT } = await import('jose')
    const unknownKid = await new SignJWT({ scope: GRANTABLE })
      .setProtectedHeader({ alg: 'RS256', kid: 'key-2026' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject('uploader')
      .setExpirationTime('5m')
      .sign(privateKey)
    await new Promise((r) => setTimeout(r, 1100)) // past the cooldown: the service tries the provider again
    await expectError(await fetch(`${svc.api}/disk/info/users/uploader/report.txt`, { headers: bearer(unknownKid) }), 503, 'store_unavailable')
    await runProvider([newKey, oldKey])
  })
})
