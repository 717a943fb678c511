/**
 * Standard Webhooks 1.0 signatures (https://www.standardwebhooks.com): every request to an endpoint
 * or a hook carries `webhook-id`, `webhook-timestamp` (Unix seconds, of this very try) and
 * `webhook-signature`, a space-separated list of `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
 * one per secret, so that a receiver holding either the old or the new secret accepts the request
 * while keys rotate. Secrets are written `whsec_<base64>` (the key is the decoded bytes).
 *
 * Five lines of node:crypto rather than the `standardwebhooks` package: the tests verify every
 * signature with that reference library, which would prove nothing if it had made them.
 */
import { createHmac } from 'node:crypto'

const PREFIX = 'whsec_'

/** The key of a `whsec_` secret; throws a message fit for a configuration error. */
export function parseSecret(secret: string): Buffer {
  if (!secret.startsWith(PREFIX)) throw new Error('a webhook secret starts with "whsec_" (whsec_ and base64 of 24 to 64 random bytes)')
  const encoded = secret.slice(PREFIX.length)
  const key = Buffer.from(encoded, 'base64')
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || key.length < 24 || key.length > 64) {
    throw new Error('a webhook secret is whsec_ and the base64 of 24 to 64 random bytes (try: echo whsec_$(openssl rand -base64 32))')
  }
  return key
}

/** The `webhook-signature` value of `body` sent as message `id` at `timestamp` (seconds), with every key. */
export function signatures(keys: readonly Buffer[], id: string, timestamp: number, body: string): string {
  const signed = `${id}.${timestamp}.${body}`
  return keys.map((key) => `v1,${createHmac('sha256', key).update(signed).digest('base64')}`).join(' ')
}

/** The headers of one try, signed now: each try is signed afresh (receivers refuse old timestamps). */
export function webhookHeaders(keys: readonly Buffer[], id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000)
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures(keys, id, timestamp, body),
  }
}
