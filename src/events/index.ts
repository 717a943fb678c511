/**
 * Events of changes for other services (docs/events.md): signed webhooks (Standard Webhooks 1.0)
 * delivered durably by a relay per store, the Redis stream, and the blocking hooks. The storage core
 * records the events with the changes (storage/events); this delivers them.
 */
export { type Consumer, type Outcome } from './consumers.js'
export { type EndpointOptions, type EventFilter, type EventsOptions, type HookOptions, type RedisStreamOptions, accepts } from './options.js'
export { MAX_PAYLOAD_BYTES, payloadOf } from './payload.js'
export { REDIS_CONSUMER, RedisStream } from './redis-stream.js'
export { StoreRelay } from './relay.js'
export { EventsService } from './service.js'
export { parseSecret, signatures, webhookHeaders } from './signing.js'
export { parseRetryAfter, WebhookEndpoint } from './webhook.js'
