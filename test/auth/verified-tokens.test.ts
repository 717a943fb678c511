/**
 * The memory of accepted tokens: a token is taken again only while it has not expired (with the
 * verification's clock tolerance) and for at most `rememberMs` after its verification; bounded.
 */
import { describe, expect, it } from 'vitest'
import { VerifiedTokens } from '../../src/auth/verified-tokens.js'

const NOW = 1_700_000_000_000
const payload = (expInSeconds: number) => ({ sub: 'ana', exp: Math.floor(NOW / 1000) + expInSeconds })

describe('VerifiedTokens', () => {
  it('takes a token again until rememberMs after its verification', () => {
    const tokens = new VerifiedTokens({ rememberMs: 60_000, clockTolerance: 30 })
    const p = payload(3600)
    tokens.set('t', p, NOW)
    expect(tokens.get('t', NOW + 59_999)).toBe(p)
    expect(tokens.get('t', NOW + 60_000)).toBeUndefined()
    expect(tokens.get('t', NOW + 1)).toBeUndefined() // forgotten once stale
  })

  it('never past the expiry the verification would accept, tolerance included', () => {
    const tokens = new VerifiedTokens({ rememberMs: 600_000, clockTolerance: 30 })
    tokens.set('t', payload(10), NOW)
    expect(tokens.get('t', NOW + 39_000)).toBeDefined()
    expect(tokens.get('t', NOW + 40_000)).toBeUndefined()
  })

  it('only the very token string, nothing without exp, nothing when disabled', () => {
    const tokens = new VerifiedTokens({ rememberMs: 60_000, clockTolerance: 0 })
    tokens.set('token-a', payload(3600), NOW)
    expect(tokens.get('token-a ', NOW)).toBeUndefined()
    expect(tokens.get('token-A', NOW)).toBeUndefined()
    tokens.set('no-exp', { sub: 'ana' } as { sub: string; exp?: number }, NOW)
    expect(tokens.get('no-exp', NOW)).toBeUndefined()
    const off = new VerifiedTokens({ rememberMs: 0, clockTolerance: 30 })
    off.set('t', payload(3600), NOW)
    expect(off.get('t', NOW)).toBeUndefined()
  })

  it('holds at most maxEntries tokens, the oldest going first', () => {
    const tokens = new VerifiedTokens({ rememberMs: 60_000, clockTolerance: 0, maxEntries: 2 })
    for (const t of ['a', 'b', 'c']) tokens.set(t, payload(3600), NOW)
    expect(tokens.get('a', NOW)).toBeUndefined()
    expect(tokens.get('b', NOW)).toBeDefined()
    expect(tokens.get('c', NOW)).toBeDefined()
  })
})
