/** The rate limits the configuration asks for (RATE_LIMIT_*), or none. */
import type { Config } from './config.js'
import { RateLimits } from './rate-limits.js'

export function rateLimitsOf(config: Config, log: (line: string) => void): RateLimits | undefined {
  if (!config.RATE_LIMIT_REQUESTS && !config.RATE_LIMIT_BYTES) return undefined
  return new RateLimits({
    ...(config.RATE_LIMIT_REQUESTS ? { requests: config.RATE_LIMIT_REQUESTS } : {}),
    ...(config.RATE_LIMIT_BYTES ? { bytes: config.RATE_LIMIT_BYTES } : {}),
    ...(config.RATE_LIMIT_REDIS_URL ? { redisUrl: config.RATE_LIMIT_REDIS_URL } : {}),
    whenRedisDown: config.RATE_LIMIT_REDIS_DOWN,
    redisTimeoutMs: config.RATE_LIMIT_REDIS_TIMEOUT,
    log,
  })
}
