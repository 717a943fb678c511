/**
 * What token verification rests on, over real HTTP against the node adapter: the JWKS is fetched
 * again for an unknown `kid` at most once per AUTH_JWKS_COOLDOWN (counted at the JWKS server), the
 * clock skew on `exp` and `nbf` is AUTH_CLOCK_SKEW and no more (the memory of accepted tokens
 * included), and a service that knows only a JWKS takes no token under another algorithm than its
 * key's: not `alg: none`, not HS256 keyed with the RSA public key, not PS256 or RS384 on an RS256 key.
 */
import { createPublicKey, randomUUID } from 'node:crypto'
import { type JWTPayload, SignJWT, UnsecuredJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, hmacKey, type JwksIssuer, type JwksKey, keysEnv, startJwksIssuer } from '../helpers/auth.js'
import { expectError, rawRequest } from '../helpers/http.js'
import { startTestService, type TestService } from '../helpers/test-service.js'

const AUDIENCE = 'filestorage'
/** Claims that give the whole `disk` store to read; a fresh `jti` makes every token a new string. */
const claims = (extra: JWTPayload = {}): JWTPayload => ({ sub: 'ana', aud: AUDIENCE, scope: 'files:read:disk', jti: randomUUID(), ...extra })
const nowSeconds = () => Math.floor(Date.now() / 1000)
const sleepUntil = (epochMs: number) => new Promise((r) => setTimeout(r, Math.max(0, epochMs - Date.now())))

/** Lists the store's root with `token`: 200 when the token is accepted. */
const listWith = (svc: TestService, token: string) => rawRequest(svc.origin, 'GET', '/filestorage/v1/disk/list/', { headers: bearer(token) })

/** Asserts the 401 of a token that is not accepted, and returns its message. */
async function expectInvalidToken(svc: TestService, token: string): Promise<string> {
  const res = await listWith(svc, token)
  const body = await expectError(res, 401, 'unauthorized')
  expect(String(res.headers['www-authenticate'])).toContain('error="invalid_token"')
  return body.error.message
}

describe('the JWKS is fetched again for an unknown kid, at most once per AUTH_JWKS_COOLDOWN', () => {
  const COOLDOWN_MS = 1500
  let issuer: JwksIssuer
  let svc: TestService
  beforeAll(async () => {
    issuer = await startJwksIssuer()
    svc = await startTestService({ AUTH_JWKS_URL: issuer.jwksUrl, AUTH_AUDIENCE: AUDIENCE, AUTH_JWKS_COOLDOWN: `${COOLDOWN_MS}ms` })
  })
  afterAll(async () => {
    await svc?.stop()
    await issuer?.close()
  })

  it('refuses unknown kids without fetching within the cooldown, fetches once after it, and then takes a newly published key', async () => {
    // Keys made up front: generating RSA keys takes time the cooldown windows below should not spend.
    const next = await issuer.createKey()
    const strangers: JwksKey[] = []
    for (let i = 0; i < 6; i++) strangers.push(await issuer.createKey())
    const unknownKidTokens = async (keys: JwksKey[]) => Promise.all(keys.map((k) => k.sign(claims())))

    expect(issuer.fetches).toBe(0) // lazily: the service starts without its identity provider
    const firstFetch = Date.now()
    expect((await listWith(svc, await issuer.sign(claims()))).status).toBe(200)
    const firstFetched = Date.now()
    expect(issuer.fetches).toBe(1)

    // Within the cooldown: a key published meanwhile and kids nobody published are all refused, no fetch.
    issuer.publish(next)
    for (const token of [await next.sign(claims()), ...(await unknownKidTokens(strangers.slice(0, 3)))]) {
      expect(await expectInvalidToken(svc, token)).toMatch(/unknown key/)
    }
    expect(Date.now() - firstFetch, 'the requests above must fit in the cooldown for this test to mean anything').toBeLessThan(COOLDOWN_MS)
    expect(issuer.fetches).toBe(1)

    // After it: the new kid makes the service fetch once, and the new key is taken.
    await sleepUntil(firstFetched + COOLDOWN_MS + 100)
    const secondFetch = Date.now()
    expect((await listWith(svc, await next.sign(claims()))).status).toBe(200)
    const secondFetched = Date.now()
    expect(issuer.fetches).toBe(2)
    for (const token of await unknownKidTokens(strangers.slice(3))) expect(await expectInvalidToken(svc, token)).toMatch(/unknown key/)
    expect(Date.now() - secondFetch, 'the requests above must fit in the cooldown for this test to mean anything').toBeLessThan(COOLDOWN_MS)
    expect(issuer.fetches).toBe(2)

    // After the next cooldown, a burst of unknown kids at once costs one fetch, not one each.
    await sleepUntil(secondFetched + COOLDOWN_MS + 100)
    const burst = await unknownKidTokens(strangers)
    const answers = await Promise.all(burst.map((token) => listWith(svc, token)))
    expect(answers.map((a) => a.status)).toEqual(burst.map(() => 401))
    expect(issuer.fetches).toBe(3)
    // Keys already known are taken from the cached set, fetching nothing.
    expect((await listWith(svc, await issuer.sign(claims()))).status).toBe(200)
    expect((await listWith(svc, await next.sign(claims()))).status).toBe(200)
    expect(issuer.fetches).toBe(3)
  })
})

describe('clock skew on exp and nbf: AUTH_CLOCK_SKEW and no more', () => {
  const key = hmacKey('clock')
  /** An HS256 token of the service's own secret with these claims (no exp unless given). */
  const hsToken = (extra: JWTPayload) =>
    new SignJWT(claims(extra)).setProtectedHeader({ alg: 'HS256', kid: key.kid }).sign(Buffer.from(key.secret, 'utf8'))

  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService({ AUTH_HMAC_SECRETS: keysEnv(key), AUTH_AUDIENCE: AUDIENCE, AUTH_CLOCK_SKEW: '30s' })
  })
  afterAll(async () => svc?.stop())

  // Every token below is a string the service has never seen (a fresh jti), so each answer is the
  // verification's, never the memory of tokens accepted before.
  it('accepts a token expired within the skew', async () => {
    expect((await listWith(svc, await hsToken({ exp: nowSeconds() - 10 }))).status).toBe(200)
  })

  it('refuses one expired beyond it with 401 invalid_token', async () => {
    expect(await expectInvalidToken(svc, await hsToken({ exp: nowSeconds() - 60 }))).toMatch(/expired/)
  })

  it('refuses one whose nbf is in the future beyond the skew, and accepts one within it', async () => {
    const exp = nowSeconds() + 600
    expect(await expectInvalidToken(svc, await hsToken({ exp, nbf: nowSeconds() + 60 }))).toMatch(/not valid yet/)
    expect((await listWith(svc, await hsToken({ exp, nbf: nowSeconds() + 10 }))).status).toBe(200)
  })

  it('refuses one without exp', async () => {
    expect(await expectInvalidToken(svc, await hsToken({}))).toMatch(/"exp"/)
  })
})

describe('a token accepted within the skew, then remembered, is refused once the skew has passed', () => {
  const key = hmacKey('clock')
  const SKEW_SECONDS = 3
  let svc: TestService
  beforeAll(async () => {
    svc = await startTestService({ AUTH_HMAC_SECRETS: keysEnv(key), AUTH_CLOCK_SKEW: `${SKEW_SECONDS}s` })
  })
  afterAll(async () => svc?.stop())

  it('answers 200, then 401 for the very same token once exp + skew is past (well within the 60 s memory)', async () => {
    const exp = nowSeconds() - 1
    const token = await new SignJWT(claims({ exp, aud: undefined })).setProtectedHeader({ alg: 'HS256', kid: key.kid }).sign(Buffer.from(key.secret, 'utf8'))
    expect((await listWith(svc, token)).status).toBe(200)
    expect((await listWith(svc, token)).status).toBe(200) // remembered
    await sleepUntil((exp + SKEW_SECONDS) * 1000 + 100)
    expect(await expectInvalidToken(svc, token)).toMatch(/expired/)
  })
})

describe('a service with a JWKS only takes each key under its own algorithm', () => {
  let issuer: JwksIssuer
  /** An RSA key published without `alg`. */
  let bare: JwksKey
  let svc: TestService
  beforeAll(async () => {
    issuer = await startJwksIssuer()
    bare = issuer.publish(await issuer.createKey({ alg: null }))
    // No AUTH_HMAC_SECRETS: nothing an HS256 token could be checked against but what the attacker brings.
    svc = await startTestService({ AUTH_JWKS_URL: issuer.jwksUrl, AUTH_AUDIENCE: AUDIENCE })
  })
  afterAll(async () => {
    await svc?.stop()
    await issuer?.close()
  })

  /** HS256 tokens keyed with public material of `key`, with its kid and without one. */
  const hs256With = async (key: JwksKey, secret: Uint8Array) => [
    await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: key.kid }).setExpirationTime('10m').sign(secret),
    await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('10m').sign(secret),
  ]
  const publicMaterial = (key: JwksKey): [string, Uint8Array][] => [
    ['PEM (SPKI)', Buffer.from(key.publicPem)],
    ['DER (SPKI)', createPublicKey(key.publicPem).export({ type: 'spki', format: 'der' })],
    ["the JWK's n, as written", Buffer.from(String(key.jwk.n))],
    ["the JWK's n, decoded", Buffer.from(String(key.jwk.n), 'base64url')],
    ['the JWK as JSON', Buffer.from(JSON.stringify(key.jwk))],
  ]

  it('takes RS256 tokens of both keys (the refusals below are the algorithms\')', async () => {
    expect((await listWith(svc, await issuer.sign(claims()))).status).toBe(200)
    expect((await listWith(svc, await bare.sign(claims()))).status).toBe(200)
  })

  it('refuses alg: none, with and without a kid', async () => {
    const unsecured = new UnsecuredJWT(claims()).setExpirationTime('10m').encode()
    const withKid = `${Buffer.from(JSON.stringify({ alg: 'none', kid: issuer.kid })).toString('base64url')}.${unsecured.split('.')[1]}.`
    for (const token of [unsecured, withKid]) expect(await expectInvalidToken(svc, token)).toMatch(/"none" are not accepted/)
  })

  it('refuses HS256 tokens keyed with the RSA public key in every form', async () => {
    for (const key of [issuer, bare]) {
      for (const [form, secret] of publicMaterial(key)) {
        for (const token of await hs256With(key, secret)) {
          expect(await expectInvalidToken(svc, token), form).toMatch(/"HS256" are not accepted/)
        }
      }
    }
  })

  it('refuses a validly signed RS token whose alg is not the JWK\'s (PS256, RS384, RS512 on an RS256 key)', async () => {
    for (const alg of ['PS256', 'RS384', 'RS512', 'PS512']) {
      expect(await expectInvalidToken(svc, await issuer.sign(claims(), { alg })), alg).toMatch(/unknown key/)
    }
  })

  it('takes a key published without alg for RS256 alone', async () => {
    for (const alg of ['PS256', 'RS384', 'RS512', 'PS384']) {
      expect(await expectInvalidToken(svc, await bare.sign(claims(), { alg })), alg).toMatch(/verifies RS256 tokens only/)
    }
  })

  it('refuses an algorithm of another key type under an RSA kid', async () => {
    const part = (json: unknown) => Buffer.from(JSON.stringify(json)).toString('base64url')
    const forged = `${part({ alg: 'ES256', kid: issuer.kid })}.${part(claims({ exp: nowSeconds() + 600 }))}.${Buffer.alloc(64).toString('base64url')}`
    expect(await expectInvalidToken(svc, forged)).toMatch(/unknown key/)
  })
})
