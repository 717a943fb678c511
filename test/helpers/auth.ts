/**
 * Access-control helpers for tests: HMAC keys as the service reads them, a JWKS served over real
 * HTTP on loopback with an RSA key (a stand-in issuer for the negative suites; the OpenID Connect
 * suite runs a real provider), and a snapshot of a disk store's every byte.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, relative } from 'node:path'
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { mintToken, type SecretKey } from '../../src/auth/index.js'

export const hmacKey = (kid: string): SecretKey => ({ kid, secret: randomBytes(32).toString('hex') })

/** `AUTH_HMAC_SECRETS` / `AUTH_URL_SIGNING_KEYS` for these keys. */
export const keysEnv = (...keys: SecretKey[]): string => keys.map((k) => `${k.kid}:${k.secret}`).join(',')

export const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` })

/** A token signed with a service HMAC key, as `npm run token` mints them. */
export const hmacToken = (key: SecretKey, sub: string, scopes: string[], extra: { issuer?: string; audience?: string; expiresIn?: number } = {}) =>
  mintToken({ key, sub, scopes, ...extra })

export interface JwksIssuer {
  jwksUrl: string
  kid: string
  /** The RSA public key as PEM (SPKI): what an HS256/RS256 confusion attack would use as an HMAC secret. */
  publicPem: string
  /** Signs claims with RS256 under this issuer's key (or `key` of another issuer, to forge). */
  sign(claims: JWTPayload, options?: { expiresIn?: number; kid?: string }): Promise<string>
  close(): Promise<void>
}

/** An RSA key whose JWKS is served at `http://127.0.0.1:port/jwks.json`. */
export async function startJwksIssuer(): Promise<JwksIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true })
  const kid = `rsa-${randomBytes(4).toString('hex')}`
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] }
  const server: Server = createServer((req, res) => {
    res.writeHead(req.url === '/jwks.json' ? 200 : 404, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify(req.url === '/jwks.json' ? jwks : {}))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
    kid,
    publicPem: await exportSPKI(publicKey),
    sign: (claims, options = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? kid })
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + (options.expiresIn ?? 600))
        .sign(privateKey),
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
