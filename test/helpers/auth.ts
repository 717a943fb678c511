/**
 * Access-control helpers for tests: HMAC keys as the service reads them, a JWKS served over real
 * HTTP on loopback with RSA keys, counting its fetches (a stand-in issuer for the negative suites and
 * the key-selection rules; the OpenID Connect suite runs a real provider), and a snapshot of a disk
 * store's every byte.
 */
import { createHash, generateKeyPair, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, relative } from 'node:path'
import { promisify } from 'node:util'
import { type JWK, type JWTPayload, SignJWT } from 'jose'
import { mintToken, type SecretKey } from '../../src/auth/index.js'

export const hmacKey = (kid: string): SecretKey => ({ kid, secret: randomBytes(32).toString('hex') })

/** `AUTH_HMAC_SECRETS` / `AUTH_URL_SIGNING_KEYS` for these keys. */
export const keysEnv = (...keys: SecretKey[]): string => keys.map((k) => `${k.kid}:${k.secret}`).join(',')

export const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` })

/** A token signed with a service HMAC key, as `npm run token` mints them. */
export const hmacToken = (key: SecretKey, sub: string, scopes: string[], extra: { issuer?: string; audience?: string; expiresIn?: number } = {}) =>
  mintToken({ key, sub, scopes, ...extra })

/** An RSA signing key of a test issuer. */
export interface JwksKey {
  kid: string
  /** The public key as the JWKS publishes it (`alg` included unless it was published without one). */
  jwk: JWK
  /** The RSA public key as PEM (SPKI): what an HS256/RS256 confusion attack would use as an HMAC secret. */
  publicPem: string
  /**
   * Signs claims with this key: RS256 under its own kid unless told otherwise (an RSA key signs RS*
   * and PS* alike, so a token can name another algorithm than the JWK's with a valid signature).
   */
  sign(claims: JWTPayload, options?: { expiresIn?: number; kid?: string; alg?: string }): Promise<string>
}

/** A JWKS served over HTTP on loopback; the issuer itself is its first key. */
export interface JwksIssuer extends JwksKey {
  jwksUrl: string
  /** How many times the JWKS has been fetched so far. */
  readonly fetches: number
  /** A new RSA key (with `alg: RS256`, or without `alg` when `alg` is null), not published: its tokens name a kid the JWKS does not hold. */
  createKey(options?: { alg?: string | null }): Promise<JwksKey>
  /** Adds `key` to the JWKS from the next fetch on. */
  publish(key: JwksKey): JwksKey
  close(): Promise<void>
}

async function rsaKey(alg: string | null): Promise<JwksKey> {
  // A KeyObject, not a WebCrypto key: WebCrypto binds a key to one algorithm, and the tests need
  // tokens under the same key with an algorithm the JWK does not name.
  const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', { modulusLength: 2048 })
  const kid = `rsa-${randomBytes(4).toString('hex')}`
  return {
    kid,
    jwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, use: 'sig', ...(alg ? { alg } : {}) },
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    sign: (claims, options = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? kid })
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + (options.expiresIn ?? 600))
        .sign(privateKey),
  }
}

/** An RSA key whose JWKS is served at `http://127.0.0.1:port/jwks.json`, counting its fetches. */
export async function startJwksIssuer(): Promise<JwksIssuer> {
  const first = await rsaKey('RS256')
  const published: JWK[] = [first.jwk]
  let fetches = 0
  const server: Server = createServer((req, res) => {
    const found = req.url === '/jwks.json'
    if (found) fetches++
    res.writeHead(found ? 200 : 404, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify(found ? { keys: published } : {}))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    ...first,
    jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
    get fetches() {
      return fetches
    },
    createKey: (options = {}) => rsaKey(options.alg === undefined ? 'RS256' : options.alg),
    publish(key) {
      published.push(key.jwk)
      return key
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** Every file under `dir` (a disk store's data, sidecars and uploads) by relative path, with its sha256. */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const full = join(d, entry.name)
      if (entry.isDirectory()) {
        out[`${relative(dir, full)}/`] = 'dir'
        await walk(full)
      } else {
        out[relative(dir, full)] = createHash('sha256').update(await readFile(full)).digest('hex')
      }
    }
  }
  await walk(dir)
  return out
}
